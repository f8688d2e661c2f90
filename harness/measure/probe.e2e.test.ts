import { describe, expect, it } from 'vitest';
import { isRoot } from '../doctor.ts';
import { RunError } from '../errors.ts';
import type { Libc } from '../providers/provider.ts';
import { runProbe, type Sample } from './probe.ts';
import { LOOPBACK_NAME, useLoopbackDns } from './loopback-dns.test-fixtures.ts';

const LIBCS: readonly Libc[] = ['musl', 'glibc'];
const NAME = LOOPBACK_NAME;

// One namespace with loopback, a real dnsmasq on 127.0.0.1 and the real musl and glibc probes (loopback-dns.ts).
describe.skipIf(!isRoot())('vxprobe streams its samples (needs root)', () => {
  const dns = useLoopbackDns('probe');
  const processesInNamespace = () => dns.processes();

  it('musl: an abort while every lookup is in flight stops at once, without waiting for them', async () => {
    // dnsmasq REFUSES names it has no record for; musl ignores a REFUSED answer and waits out its 5 s timeout.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 300);
    const out = await runProbe(dns.pods.musl, { targets: ['refused.test.'], threads: 4, durationS: 600 }, { signal: ac.signal }).finally(() => clearTimeout(timer));
    expect(out.stopped).toBe('aborted');
    expect(out.samples).toEqual([]);
    // The wall time the probe printed in its `# stopped` trailer: shorter than one lookup's timeout.
    expect(out.wallUs).toBeGreaterThan(0);
    expect(out.wallUs).toBeLessThan(5e6);
    expect(await processesInNamespace()).toEqual([dns.dnsmasq.pid]);
  });

  for (const libc of LIBCS) {
    it(`${libc}: an abort mid-run returns every sample measured, each streamed through onSample first`, async () => {
      const ac = new AbortController();
      const streamed: Sample[] = [];
      let streamedBeforeAbort = 0;
      const out = await runProbe(
        dns.pods[libc],
        // Many threads writing at once: a torn line would make the parser throw.
        { targets: [NAME], threads: 16, durationS: 600 },
        {
          signal: ac.signal,
          onSample: (s) => {
            streamed.push(s);
            if (streamed.length === 300) {
              streamedBeforeAbort = streamed.length;
              ac.abort();
            }
          },
        },
      );
      expect(out.stopped).toBe('aborted');
      expect(out.libc).toBe(libc);
      expect(streamedBeforeAbort).toBe(300);
      expect(out.samples.length).toBeGreaterThanOrEqual(300);
      expect(streamed).toEqual(out.samples);
      expect(out.samples.filter((s) => s.result !== 'OK')).toEqual([]);
      expect(new Set(out.samples.map((s) => s.thread)).size).toBeGreaterThan(1);
      // Stopped, not run to its 600 s end; and gone: only dnsmasq is left in the namespace.
      expect(out.wallUs).toBeLessThan(600e6);
      expect(await processesInNamespace()).toEqual([dns.dnsmasq.pid]);
    });

    it(`${libc}: a probe stopped at its time bound returns its samples`, async () => {
      let streamed = 0;
      const out = await runProbe(dns.pods[libc], { targets: [NAME], threads: 2, durationS: 600 }, { boundMs: 1500, onSample: () => streamed++ });
      expect(out.stopped).toBe('bound');
      expect(out.samples.length).toBeGreaterThan(0);
      expect(streamed).toBe(out.samples.length);
      expect(out.samples.filter((s) => s.result !== 'OK')).toEqual([]);
      expect(await processesInNamespace()).toEqual([dns.dnsmasq.pid]);
    });

    it(`${libc}: a run to its end is complete and not marked stopped`, async () => {
      const out = await runProbe(dns.pods[libc], { targets: [NAME], threads: 4, count: 50 });
      expect(out.stopped).toBeUndefined();
      expect(out.samples).toHaveLength(50);
    });

    it(`${libc}: bad numeric arguments and too many targets exit 2 with a message`, async () => {
      const bad: [string[], RegExp][] = [
        [['-t', '0', '-c', '1', NAME], /-t: expected an integer from 1 to 1024, got "0"/],
        [['-t', '4x', '-c', '1', NAME], /-t: expected an integer/],
        [['-d', '1e999', NAME], /-d: expected seconds/],
        [['-d', '-1', NAME], /-d: expected seconds/],
        [['-c', '12x', NAME], /-c: expected an integer/],
        [['-c', '99999999999999999999', NAME], /-c: expected an integer/],
        [['-C', '-p', '65536', '-c', '1', '127.0.0.1'], /-p: expected an integer from 1 to 65535/],
        [['-C', '-p', '80', '-c', '1', 'not-an-address'], /not an IPv4 address/],
        [['-c', '1', ...Array.from({ length: 17 }, (_, i) => `n${i}.test.`)], /too many targets \(17\), at most 16/],
        [['-c', '1'], /no NAME/],
        [[NAME], /give a bound/],
      ];
      for (const [args, message] of bad) {
        const r = await dns.pods[libc].exec([...dns.pods[libc].probe, ...args], { nothrow: true, timeoutMs: 5000 });
        expect(r.exitCode, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(message);
        expect(r.stdout, args.join(' ')).toBe('');
      }
      const refused = await runProbe(dns.pods[libc], { targets: [NAME], threads: 0, count: 1 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RunError);
      expect((refused as RunError).status).toBe(2);
      expect((refused as RunError).message).toMatch(/-t: expected an integer/);
    });
  }
});
