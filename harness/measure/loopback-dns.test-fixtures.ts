import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import { join } from 'node:path';
import { BUILD_DIR } from '../doctor.ts';
import { shell } from '../exec/shell.ts';
import { downAll, Ledger, NETNS_PREFIX } from '../providers/netns/ledger.ts';
import { LocalHost } from '../providers/netns/local-host.ts';
import { NetnsClientPod } from '../providers/netns/node.ts';
import type { Daemon, Libc } from '../providers/provider.ts';

/** The name the loopback dnsmasq answers (A and AAAA: musl waits out a REFUSED AAAA); the dot skips the search list. */
export const LOOPBACK_NAME = 'probe.test.';

export interface LoopbackDns {
  runId: string;
  ns: string;
  pods: Record<Libc, NetnsClientPod>;
  dnsmasq: Daemon;
  /** The PIDs in the namespace now (dnsmasq, and any probe still running). */
  processes(): Promise<number[]>;
  down(): Promise<void>;
}

/**
 * For the probe's own end-to-end tests: one namespace with loopback up, a real dnsmasq on 127.0.0.1 and the
 * real musl and glibc probes as client pods, all in a ledger so a failed test still leaves nothing.
 */
export async function loopbackDns(prefix: string): Promise<LoopbackDns> {
  const runId = `${prefix}${randomBytes(3).toString('hex')}`;
  const ns = `${NETNS_PREFIX}${runId}-x`;
  const host = new LocalHost();
  const ledger = await Ledger.open(host, runId);
  await ledger.record({ kind: 'netns', name: ns });
  await shell(['ip', 'netns', 'add', ns]);
  await shell(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  const ctx = { host, ledger };
  const pods = {} as Record<Libc, NetnsClientPod>;
  for (const libc of ['musl', 'glibc'] as const) pods[libc] = new NetnsClientPod(`client-${libc}`, ns, ctx, 'node-1', '127.0.0.1', libc, [join(BUILD_DIR, `vxprobe-${libc}`)]);
  await pods.musl.writeFile('/etc/resolv.conf', 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n');
  // Unknown names are REFUSED here (no --address=/#/ catch-all): the abort tests need lookups that hang.
  const dnsmasq = await pods.musl.spawn(
    ['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll', '--bind-interfaces',
      '--listen-address=127.0.0.1', '--user=root', '--group=root', '--pid-file=', '--host-record=probe.test,10.0.0.1,fd00::1'],
    { name: 'dnsmasq' },
  );
  for (let i = 0; ; i++) {
    const r = await pods.musl.exec(['dig', '+short', '+time=1', '+tries=1', '@127.0.0.1', LOOPBACK_NAME], { nothrow: true, timeoutMs: 5000 });
    if (r.stdout.trim() === '10.0.0.1') break;
    if (i === 50) throw new Error(`dnsmasq in ${ns} does not answer: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    runId,
    ns,
    pods,
    dnsmasq,
    processes: async () => (await shell(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean).map(Number),
    down: async () => {
      await downAll(undefined, runId);
    },
  };
}

/**
 * loopbackDns for a describe block: up in beforeAll, down in afterAll (and checked gone); the returned object
 * is filled in before the first test runs.
 */
export function useLoopbackDns(prefix: string): LoopbackDns {
  const dns = {} as LoopbackDns;
  beforeAll(async () => {
    Object.assign(dns, await loopbackDns(prefix));
  });
  afterAll(async () => {
    await dns.down?.();
    if (dns.ns) expect((await shell(['ip', 'netns', 'list'])).stdout).not.toContain(dns.ns);
  });
  return dns;
}
