import { describe, expect, it } from 'vitest';
import { VxError } from '../errors.ts';
import { delta, parseConntrackStats, parseSnmp } from './counters.ts';
import { decodeHistogram, summarize } from './histogram.ts';
import { parseProbeOutput, probeArgv } from './probe.ts';

describe('probe protocol', () => {
  it('parses samples and refuses truncated output', () => {
    const out = parseProbeOutput('# vxprobe 1 libc=musl mode=resolve threads=2 fresh=0\nL 0 10 500 OK 1\nL 1 12 5004000 EAI_AGAIN 0\n# done samples=2 wall_us=5004100\n');
    expect(out.libc).toBe('musl');
    expect(out.samples).toEqual([
      { thread: 0, startUs: 10, latencyUs: 500, result: 'OK' },
      { thread: 1, startUs: 12, latencyUs: 5004000, result: 'EAI_AGAIN' },
    ]);
    expect(() => parseProbeOutput('# vxprobe 1 libc=musl\nL 0 1 1 OK 1\n')).toThrow(VxError);
    expect(() => parseProbeOutput('# vxprobe 1 libc=musl\nL 0 1 1 OK 1\n# done samples=2 wall_us=1\n')).toThrow(/printed 1 samples but counted 2/);
  });

  it('builds argv for resolve and connect modes', () => {
    expect(probeArgv({ targets: ['a.', 'b'], threads: 4, durationS: 3, fresh: true })).toEqual(['-t', '4', '-d', '3', '-f', 'a.', 'b']);
    expect(probeArgv({ targets: ['10.96.100.10'], threads: 1, count: 50, connectPort: 80 })).toEqual(['-t', '1', '-c', '50', '-C', '-p', '80', '10.96.100.10']);
  });
});

describe('latency summary (HdrHistogram)', () => {
  it('gives percentiles within HDR precision and a decodable histogram', () => {
    const lat = [...Array.from({ length: 200 }, () => 800), ...Array.from({ length: 100 }, () => 5_003_000)];
    const s = summarize(lat, 1000);
    expect(s.p50Ms).toBeCloseTo(0.8, 2);
    expect(s.p90Ms).toBeGreaterThan(5000);
    expect(s.p90Ms).toBeLessThan(5010);
    expect(s.maxMs).toBe(5003);
    expect(s.p999Ms).toBeLessThanOrEqual(s.maxMs);
    expect(s.overThreshold).toBe(100);
    const h = decodeHistogram(s.histogram);
    expect(h.totalCount).toBe(300);
  });
});

describe('kernel counters', () => {
  it('sums conntrack -S over CPUs', () => {
    const c = parseConntrackStats('cpu=0   \tfound=0 invalid=3 insert=0 insert_failed=2 drop=1 early_drop=0 error=0 search_restart=0 clash_resolve=4 chaintoolong=0\ncpu=1 found=1 invalid=0 insert=0 insert_failed=1 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0\n');
    expect(c['conntrack.insert_failed']).toBe(3);
    expect(c['conntrack.clash_resolve']).toBe(4);
    expect(c['conntrack.cpu']).toBeUndefined();
  });

  it('reads Udp InCsumErrors from /proc/net/snmp and takes deltas per node', () => {
    const snmp = 'Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdp: 10 0 2 10 1 0 7 0 0\nTcp: RtoAlgorithm RetransSegs\nTcp: 1 5\n';
    const c = parseSnmp(snmp, { Udp: ['InCsumErrors', 'RcvbufErrors'], Tcp: ['RetransSegs'] });
    expect(c).toEqual({ 'udp.InCsumErrors': 7, 'udp.RcvbufErrors': 1, 'tcp.RetransSegs': 5 });
    const d = delta({ a: { x: 1 }, b: { x: 5 } }, { a: { x: 4 }, b: { x: 5 } });
    expect(d.total.x).toBe(3);
    expect(d.byNode.a!.x).toBe(3);
  });
});
