import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DIR, isRoot } from '../doctor.ts';
import { downAll, Ledger, NETNS_PREFIX } from '../providers/netns/ledger.ts';
import { LocalHost } from '../providers/netns/local-host.ts';
import { shell } from '../exec/shell.ts';
import { NetnsClientPod } from '../providers/netns/node.ts';
import type { Daemon, Libc } from '../providers/provider.ts';
import type { ExpectationSpec } from '../report/matrix.ts';
import { measureAdaptive, settlerOptionsFor } from './adaptive.ts';
import { Settler } from './settle.ts';

const LIBCS: readonly Libc[] = ['musl', 'glibc'];
/** dnsmasq answers A and AAAA from a host record (musl waits out a REFUSED AAAA); the dot skips the search list. */
const NAME = 'probe.test.';

// One namespace with loopback, a real dnsmasq on 127.0.0.1 and the real musl and glibc probes.
describe.skipIf(!isRoot())('a cell stops once its verdict is settled: the real probe, killed by the runner (needs root)', () => {
  const runId = `adapt${randomBytes(3).toString('hex')}`;
  const ns = `${NETNS_PREFIX}${runId}-x`;
  const pods = {} as Record<Libc, NetnsClientPod>;
  let dnsmasq: Daemon;

  beforeAll(async () => {
    const host = new LocalHost();
    const ledger = await Ledger.open(host, runId);
    await ledger.record({ kind: 'netns', name: ns });
    await shell(['ip', 'netns', 'add', ns]);
    await shell(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    const ctx = { host, ledger };
    for (const libc of LIBCS) pods[libc] = new NetnsClientPod(`client-${libc}`, ns, ctx, 'node-1', '127.0.0.1', libc, [join(BUILD_DIR, `vxprobe-${libc}`)]);
    await pods.musl.writeFile('/etc/resolv.conf', 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n');
    dnsmasq = await pods.musl.spawn(
      ['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll', '--bind-interfaces',
        '--listen-address=127.0.0.1', '--user=root', '--group=root', '--pid-file=', '--host-record=probe.test,10.0.0.1,fd00::1'],
      { name: 'dnsmasq' },
    );
    for (let i = 0; ; i++) {
      const r = await pods.musl.exec(['dig', '+short', '+time=1', '+tries=1', '@127.0.0.1', NAME], { nothrow: true, timeoutMs: 5000 });
      if (r.stdout.trim() === '10.0.0.1') break;
      if (i === 50) throw new Error(`dnsmasq in ${ns} does not answer: ${r.stdout}${r.stderr}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  afterAll(async () => {
    await downAll(undefined, runId);
    const left = (await shell(['ip', 'netns', 'list'])).stdout;
    expect(left).not.toContain(ns);
  });

  const processesInNamespace = async () =>
    (await shell(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean).map(Number);

  for (const libc of LIBCS) {
    it(`${libc}: a clean stream settles right after its minimum, far before its 30 s cap, and the probe is gone`, async () => {
      const exp: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 500 };
      const wl = { thresholdMs: 1000, durationS: 30, threads: 8 };
      const settler = new Settler(exp, settlerOptionsFor(exp, wl));
      const t0 = performance.now();
      const r = await measureAdaptive(pods[libc], { targets: [NAME], threads: wl.threads, durationS: wl.durationS }, settler);
      expect(r.settlement.verdict, r.settlement.reason).toBe('pass');
      expect(r.settlement.stoppedBy).toBe('settled');
      expect(r.output.stopped).toBe('aborted');
      expect(r.settlement.atMs).toBeGreaterThanOrEqual(2000);
      expect(performance.now() - t0).toBeLessThan(25_000);
      // The verdict is on every lookup the probe printed, the ones after the settling look included.
      expect(r.settlement.classified.samples).toBe(r.output.samples.length);
      expect(r.settlement.classified.samples).toBeGreaterThanOrEqual(1920);
      expect(await processesInNamespace()).toEqual([dnsmasq.pid]);
    });
  }

  it('musl: a reproducing stream stops only once enough stalled lookups have ended', async () => {
    // dnsmasq REFUSES names it has no record for; musl ignores a REFUSED answer and waits out its 5 s timeout:
    // every thread is past the threshold at 0.3 s, but the symptom (EAI_AGAIN after 5 s) shows only at 5 s.
    const exp: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.5, 1] };
    const wl = { thresholdMs: 300, durationS: 30, threads: 16 };
    const settler = new Settler(exp, settlerOptionsFor(exp, wl));
    const r = await measureAdaptive(pods.musl, { targets: ['refused.test.'], threads: wl.threads, durationS: wl.durationS }, settler);
    expect(r.settlement).toMatchObject({ verdict: 'pass', stoppedBy: 'settled' });
    expect(r.output.stopped).toBe('aborted');
    expect(r.settlement.atMs).toBeGreaterThanOrEqual(4900);
    expect(r.settlement.atMs).toBeLessThan(15_000);
    expect(r.output.samples.length).toBeGreaterThanOrEqual(6);
    expect(r.output.samples.every((s) => s.result === 'EAI_AGAIN' && s.latencyUs > 4e6)).toBe(true);
    expect(await processesInNamespace()).toEqual([dnsmasq.pid]);
  });
});
