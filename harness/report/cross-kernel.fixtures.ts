/**
 * The conntrack-race suite as three kernels would report it, for the cross-kernel tests: the native race
 * reproduces on the oldest kernel only; the emulated race reproduces everywhere; a mitigation that holds on
 * the older kernels stops holding on the newest (with the drop that explains it); one cell is skipped on one.
 */
import type { Cell, Matrix } from './matrix.ts';
import { makeCell, makeMatrix } from './test-fixtures.ts';

export const THIRD = Math.round(5000 / 3);

export const KERNELS = {
  bullseye: { release: '5.10.0-32-amd64', version: '#1 SMP Debian 5.10.223-1 (2024-08-10)', source: 'debian:bullseye', notes: { accel: 'tcg', clocksource: 'hpet' } },
  bookworm: { release: '6.1.0-29-amd64', version: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.123-1 (2025-01-02)', source: 'debian:bookworm', notes: { accel: 'tcg', clocksource: 'hpet' } },
  host: { release: '6.12.12-amd64', version: '#1 SMP PREEMPT_DYNAMIC Debian 6.12.12-1 (2025-02-02)', source: 'host' },
} as const;

export type KernelName = keyof typeof KERNELS;

const drops = {
  available: true,
  total: 1700,
  rows: [
    // Ranked rows sink background noise; a lenient reader must still never name it the cause.
    { ns: 'node-2', iface: 'eth0', reason: 'NOT_SPECIFIED', func: 'sk_skb_reason_drop', count: 30, background: true },
    { ns: 'node-1', iface: 'cni0', reason: 'NETFILTER_DROP', func: 'nft_do_chain', count: 1667, excess: 1667 },
  ],
};

/** The cells of one kernel's run; seeds fixed so every run of the test builds the same histograms. */
export function conntrackCells(kernel: KernelName): Cell[] {
  const old = kernel === 'bullseye';
  const newest = kernel === 'host';
  const race = { fault: 'conntrack-race', faultMode: 'emulated' };
  const cells = [
    makeCell({ client: 'musl' }, 1),
    makeCell({ client: 'musl', fault: 'conntrack-race', faultMode: 'native', ...(old ? { errors: THIRD, slowMs: 2500 } : {}) }, 2),
    makeCell({ client: 'musl', ...race, errors: THIRD, slowMs: 2500 }, 3),
    makeCell({ client: 'glibc', ...race, mitigation: 'single-request', ...(newest ? { errors: THIRD } : {}) }, 4),
    makeCell({ client: 'glibc', ...race, mitigation: 'nodelocal-dns' }, 5),
  ];
  if (newest) Object.assign(cells[3]!, { drops });
  // kernel-specific skip: the provider could not run this cell on this kernel
  if (kernel === 'bookworm') Object.assign(cells[4]!, { verdict: 'skipped', reason: 'needs nftDynamicSets, which this kernel lacks', samples: 0 });
  return cells;
}

export function kernelRun(kernel: KernelName, over: Partial<Matrix> = {}): Matrix {
  const k = KERNELS[kernel];
  return makeMatrix(conntrackCells(kernel), {
    suite: 'conntrack-race',
    runId: `${kernel.slice(0, 3)}001`,
    kernel: k.release,
    kernelUnderTest: { ...k, notes: { ...('notes' in k ? k.notes : {}) } },
    host: { hostname: 'runner-1', kernel: KERNELS.host.release, cpus: '2' },
    description: 'parallel A/AAAA through the ClusterIP DNAT lose a conntrack insert race',
    ...over,
  });
}
