import { describe, expect, it } from 'vitest';
import { isRoot } from '../doctor.ts';
import type { Libc } from '../providers/provider.ts';
import type { ExpectationSpec } from '../report/matrix.ts';
import { measureAdaptive, settlerOptionsFor } from './adaptive.ts';
import { Settler } from './settle.ts';
import { LOOPBACK_NAME, useLoopbackDns } from './loopback-dns.test-fixtures.ts';

const LIBCS: readonly Libc[] = ['musl', 'glibc'];
const NAME = LOOPBACK_NAME;

// One namespace with loopback, a real dnsmasq on 127.0.0.1 and the real musl and glibc probes (loopback-dns.ts).
describe.skipIf(!isRoot())('a cell stops once its verdict is settled: the real probe, killed by the runner (needs root)', () => {
  const dns = useLoopbackDns('adapt');
  const processesInNamespace = () => dns.processes();

  for (const libc of LIBCS) {
    it(`${libc}: a clean stream settles right after its minimum, far before its 30 s cap, and the probe is gone`, async () => {
      const exp: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 500 };
      const wl = { thresholdMs: 1000, durationS: 30, threads: 8 };
      const settler = new Settler(exp, settlerOptionsFor(exp, wl));
      const t0 = performance.now();
      const r = await measureAdaptive(dns.pods[libc], { targets: [NAME], threads: wl.threads, durationS: wl.durationS }, settler);
      expect(r.settlement.verdict, r.settlement.reason).toBe('pass');
      expect(r.settlement.stoppedBy).toBe('settled');
      expect(r.output.stopped).toBe('aborted');
      expect(r.settlement.atMs).toBeGreaterThanOrEqual(2000);
      expect(performance.now() - t0).toBeLessThan(25_000);
      // The verdict is on every lookup the probe printed, the ones after the settling look included.
      expect(r.settlement.classified.samples).toBe(r.output.samples.length);
      expect(r.settlement.classified.samples).toBeGreaterThanOrEqual(1920);
      expect(await processesInNamespace()).toEqual([dns.dnsmasq.pid]);
    });
  }

  it('musl: a reproducing stream stops only once enough stalled lookups have ended', async () => {
    // dnsmasq REFUSES names it has no record for; musl ignores a REFUSED answer and waits out its 5 s timeout:
    // every thread is past the threshold at 0.3 s, but the symptom (EAI_AGAIN after 5 s) shows only at 5 s.
    const exp: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.5, 1] };
    const wl = { thresholdMs: 300, durationS: 30, threads: 16 };
    const settler = new Settler(exp, settlerOptionsFor(exp, wl));
    const r = await measureAdaptive(dns.pods.musl, { targets: ['refused.test.'], threads: wl.threads, durationS: wl.durationS }, settler);
    expect(r.settlement).toMatchObject({ verdict: 'pass', stoppedBy: 'settled' });
    expect(r.output.stopped).toBe('aborted');
    expect(r.settlement.atMs).toBeGreaterThanOrEqual(4900);
    expect(r.settlement.atMs).toBeLessThan(15_000);
    expect(r.output.samples.length).toBeGreaterThanOrEqual(6);
    expect(r.output.samples.every((s) => s.result === 'EAI_AGAIN' && s.latencyUs > 4e6)).toBe(true);
    expect(await processesInNamespace()).toEqual([dns.dnsmasq.pid]);
  });
});
