import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_DIR, isRoot } from '../doctor.ts';
import { RunError } from '../errors.ts';
import { downAll, Ledger, NETNS_PREFIX } from '../providers/netns/ledger.ts';
import { LocalHost } from '../providers/netns/local-host.ts';
import { shell } from '../exec/shell.ts';
import { NetnsClientPod } from '../providers/netns/node.ts';
import type { Daemon, Libc } from '../providers/provider.ts';
import { runProbe, type Sample } from './probe.ts';

const LIBCS: readonly Libc[] = ['musl', 'glibc'];
/** dnsmasq answers A and AAAA from a host record (musl waits out a REFUSED AAAA); the dot skips the search list. */
const NAME = 'probe.test.';

// One namespace with loopback, a real dnsmasq on 127.0.0.1 and the real musl and glibc probes.
describe.skipIf(!isRoot())('vxprobe streams its samples (needs root)', () => {
  const runId = `probe${randomBytes(3).toString('hex')}`;
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

  it('musl: an abort while every lookup is in flight stops at once, without waiting for them', async () => {
    // dnsmasq REFUSES names it has no record for; musl ignores a REFUSED answer and waits out its 5 s timeout.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 300);
    const out = await runProbe(pods.musl, { targets: ['refused.test.'], threads: 4, durationS: 600 }, { signal: ac.signal }).finally(() => clearTimeout(timer));
    expect(out.stopped).toBe('aborted');
    expect(out.samples).toEqual([]);
    // The wall time the probe printed in its `# stopped` trailer: shorter than one lookup's timeout.
    expect(out.wallUs).toBeGreaterThan(0);
    expect(out.wallUs).toBeLessThan(5e6);
    expect(await processesInNamespace()).toEqual([dnsmasq.pid]);
  });

  for (const libc of LIBCS) {
    it(`${libc}: an abort mid-run returns every sample measured, each streamed through onSample first`, async () => {
      const ac = new AbortController();
      const streamed: Sample[] = [];
      let streamedBeforeAbort = 0;
      const out = await runProbe(
        pods[libc],
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
      expect(await processesInNamespace()).toEqual([dnsmasq.pid]);
    });

    it(`${libc}: a probe stopped at its time bound returns its samples`, async () => {
      let streamed = 0;
      const out = await runProbe(pods[libc], { targets: [NAME], threads: 2, durationS: 600 }, { boundMs: 1500, onSample: () => streamed++ });
      expect(out.stopped).toBe('bound');
      expect(out.samples.length).toBeGreaterThan(0);
      expect(streamed).toBe(out.samples.length);
      expect(out.samples.filter((s) => s.result !== 'OK')).toEqual([]);
      expect(await processesInNamespace()).toEqual([dnsmasq.pid]);
    });

    it(`${libc}: a run to its end is complete and not marked stopped`, async () => {
      const out = await runProbe(pods[libc], { targets: [NAME], threads: 4, count: 50 });
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
        const r = await pods[libc].exec([...pods[libc].probe, ...args], { nothrow: true, timeoutMs: 5000 });
        expect(r.exitCode, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(message);
        expect(r.stdout, args.join(' ')).toBe('');
      }
      const refused = await runProbe(pods[libc], { targets: [NAME], threads: 0, count: 1 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RunError);
      expect((refused as RunError).status).toBe(2);
      expect((refused as RunError).message).toMatch(/-t: expected an integer/);
    });
  }
});
