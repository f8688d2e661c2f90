import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareSuite } from '../cells.ts';
import { isRoot } from '../doctor.ts';
import { shell } from '../exec/shell.ts';
import { progress } from '../progress.ts';
import { GuestNetnsProvider } from '../providers/netns/guest.ts';
import { runSuite } from '../runner.ts';
import { VM_STATE_DIR } from '../vm/index.ts';

const KERNEL = 'debian:bookworm';

/**
 * The kernel axis end to end: flannel-arp's stale-peers incident on a Debian kernel in a qemu microVM (TCG
 * here), through the same provider, faults and probe as on the host. Bounded: one client, two short cells.
 */
describe.skipIf(!isRoot())(`flannel-arp on ${KERNEL} in a microVM (needs root, qemu)`, () => {
  it('reproduces seed 002 on the guest kernel, names that kernel in matrix.json, and leaves no VM behind', async () => {
    const prepared = prepareSuite('flannel-arp');
    prepared.suite.cells = prepared.suite.cells.filter((c) => c.fault === 'mac-churn' && c.mode === 'stale-peers');
    const provider = new GuestNetnsProvider(KERNEL, () => undefined);
    const { matrix } = await runSuite({
      prepared,
      provider,
      clients: ['musl'],
      quick: true,
      keep: false,
      durationS: 6,
      outDir: mkdtempSync(join(tmpdir(), 'vxc-kernel-')),
      progress: progress({ quiet: true }),
    });
    expect(matrix.kernel).toMatch(/^6\.1\.\d+-\d+-amd64$/);
    expect(matrix.kernelUnderTest?.source).toMatch(/^debian:bookworm/);
    expect(matrix.host.kernel).not.toBe(matrix.kernel);
    const [stale, resync] = matrix.cells;
    expect(stale!.verdict, stale!.reason).toBe('pass');
    expect(stale!.counters['neigh.stalePeers']).toBe(2);
    expect(stale!.errorsByKind.EAI_AGAIN).toBeGreaterThan(0);
    // The resync removes the symptom in the guest too (timing is emulated under TCG: no lookup may fail).
    expect(resync!.errors, resync!.reason).toBe(0);
    // By process name (not -f, which would match the shell around pgrep): no qemu of a vxchaos VM is left.
    const qemu = await shell(['pgrep', '-a', 'qemu-system-x86'], { nothrow: true });
    expect(qemu.stdout.split('\n').filter((l) => l.includes('vxc-vm-'))).toEqual([]);
    const left = await shell(['ls', '-A', VM_STATE_DIR], { nothrow: true });
    expect(left.stdout.trim()).toBe('');
  }, 600_000);
});
