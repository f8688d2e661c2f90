import { describe, expect, it } from 'vitest';
import { untilQuiet } from './bench.ts';
import { loadTopology } from '../config/topology.ts';
import { ConfigError, VxError } from '../errors.ts';
import { stallDrops, stallRuleset, withNameserver } from './capture.ts';
import { BENCH_SCHEMA_VERSION, type AccuracyRun, type BenchResult } from './model.ts';
import { dnsPackets, LINKTYPE_ETHERNET, parsePcap, parseTcpdumpStats, PCAP_MAGIC_NS, PCAP_MAGIC_US, sequentialLookups, type DnsPacket } from './pcap.ts';
import { evaluateTargets, renderMarkdown } from './render.ts';
import { linearFit, median, parseDnsperf, percentile } from './stats.ts';
import { nodeTopology, nodeTopologyYaml, TEMPLATE_TOPOLOGY } from './topology.ts';
import { verdictAgreement } from './agreement.ts';

// --- a pcap written byte by byte ------------------------------------------------------------------------

const CLIENT = '10.244.0.3';
const DNS = '10.96.0.10';

/** What the parser returns, as the test writes it (queries leave `response` out). */
type Pkt = Omit<DnsPacket, 'response'> & { response?: boolean };

const q = (tNs: number, port: number, id: number): Pkt => ({ tNs, src: CLIENT, sport: port, dst: DNS, dport: 53, id });
const a = (tNs: number, port: number, id: number): Pkt => ({ tNs, src: DNS, sport: 53, dst: CLIENT, dport: port, id, response: true });

/** Ethernet + IPv4 + UDP + a 12-byte DNS header (ID, flags with QR). */
function frame(p: Pkt): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + 12);
  const v = new DataView(f.buffer);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 20 + 8 + 12);
  f[22] = 64;
  f[23] = 17;
  f.set(p.src.split('.').map(Number), 26);
  f.set(p.dst.split('.').map(Number), 30);
  v.setUint16(34, p.sport);
  v.setUint16(36, p.dport);
  v.setUint16(38, 8 + 12);
  v.setUint16(42, p.id);
  v.setUint16(44, p.response ? 0x8180 : 0x0100);
  return f;
}

const EPOCH = 1_795_316_537;

function pcapBytes(pkts: readonly Pkt[], opts: { nanos?: boolean; bigEndian?: boolean; truncateLast?: number } = {}): Uint8Array {
  const le = !opts.bigEndian;
  const frames = pkts.map(frame);
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0);
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  v.setUint32(0, opts.nanos ? PCAP_MAGIC_NS : PCAP_MAGIC_US, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, 262144, le);
  v.setUint32(20, LINKTYPE_ETHERNET, le);
  let off = 24;
  pkts.forEach((p, i) => {
    const f = frames[i]!;
    const sec = EPOCH + Math.floor(p.tNs / 1e9);
    const ns = p.tNs % 1e9;
    v.setUint32(off, sec, le);
    v.setUint32(off + 4, opts.nanos ? ns : Math.floor(ns / 1000), le);
    v.setUint32(off + 8, f.length, le);
    v.setUint32(off + 12, f.length, le);
    buf.set(f, off + 16);
    off += 16 + f.length;
  });
  return opts.truncateLast ? buf.subarray(0, buf.length - opts.truncateLast) : buf;
}

describe('pcap', () => {
  const pkts = [q(100_250, 40000, 7), a(350_500, 40000, 7), { ...q(2_000_000_000, 40001, 8), dst: '10.96.0.11' }];

  it('reads µs and ns files in either byte order, relative to the first whole second', () => {
    for (const bigEndian of [false, true]) {
      const us = parsePcap(pcapBytes(pkts, { bigEndian }));
      expect(us.nanos).toBe(false);
      expect(us.linkType).toBe(LINKTYPE_ETHERNET);
      expect(us.epochS).toBe(EPOCH);
      expect(us.packets.map((p) => p.tNs)).toEqual([100_000, 350_000, 2_000_000_000]);
      const ns = parsePcap(pcapBytes(pkts, { nanos: true, bigEndian }));
      expect(ns.nanos).toBe(true);
      expect(ns.packets.map((p) => p.tNs)).toEqual([100_250, 350_500, 2_000_000_000]);
    }
  });

  it('decodes DNS over UDP/IPv4 and keeps whole records of a capture cut short', () => {
    const d = dnsPackets(parsePcap(pcapBytes(pkts, { nanos: true, truncateLast: 5 })));
    expect(d).toEqual([
      { tNs: 100_250, src: CLIENT, sport: 40000, dst: DNS, dport: 53, id: 7, response: false },
      { tNs: 350_500, src: DNS, sport: 53, dst: CLIENT, dport: 40000, id: 7, response: true },
    ]);
    expect(() => parsePcap(new Uint8Array(10))).toThrow(VxError);
    expect(() => parsePcap(new Uint8Array(24).fill(0x0a))).toThrow(/not a pcap/);
  });

  it('groups a sequential client into lookups: parallel A+AAAA, single-request, a stall and its retry', () => {
    const wire = [
      // musl: A and AAAA at once, answers in either order
      q(1_000, 40000, 1), q(1_050, 40000, 2), a(1_300, 40000, 2), a(1_400, 40000, 1),
      // glibc single-request: A, its answer, then AAAA on the same socket
      q(2_000, 40100, 3), a(2_200, 40100, 3), q(2_250, 40100, 4), a(2_500, 40100, 4),
      // the first A is dropped on the node; the AAAA is answered; the retry 5 s later completes the lookup
      q(3_000, 40200, 5), q(3_050, 40200, 6), a(3_300, 40200, 6), q(5_003_000, 40200, 5), a(5_003_400, 40200, 5),
      // a duplicate answer to the old socket after the next lookup has started is nobody's
      q(6_000_000, 40300, 9), a(6_000_100, 40200, 5), a(6_000_200, 40300, 9),
      // a lookup that never got its AAAA answered
      q(7_000_000, 40400, 10), q(7_000_010, 40400, 11), a(7_000_300, 40400, 10),
    ];
    const lookups = sequentialLookups(dnsPackets(parsePcap(pcapBytes(wire, { nanos: true }))), CLIENT);
    expect(lookups.map((l) => [l.port, l.durationUs, l.queries, l.ids, l.complete])).toEqual([
      [40000, 0.4, 2, 2, true],
      [40100, 0.5, 2, 2, true],
      [40200, 5000.4, 3, 2, true],
      [40300, 0.2, 1, 1, true],
      [40400, 0.3, 2, 2, false],
    ]);
  });

  it('reads tcpdump exit statistics', () => {
    expect(parseTcpdumpStats('tcpdump: listening on eth0\n12 packets captured\n12 packets received by filter\n0 packets dropped by kernel\n')).toEqual({ captured: 12, received: 12, dropped: 0 });
    expect(parseTcpdumpStats('')).toEqual({ captured: undefined, received: undefined, dropped: undefined });
  });
});

describe('stats', () => {
  it('fits a line by least squares', () => {
    const f = linearFit([3, 10, 25, 50], [3 * 200 + 300, 10 * 200 + 300, 25 * 200 + 300, 50 * 200 + 300]);
    expect(f.slope).toBeCloseTo(200, 9);
    expect(f.intercept).toBeCloseTo(300, 9);
    expect(f.r2).toBeCloseTo(1, 12);
    const noisy = linearFit([1, 2, 3, 4], [1, 3, 2, 4]);
    expect(noisy.slope).toBeCloseTo(0.8, 9);
    expect(noisy.intercept).toBeCloseTo(0.5, 9);
    expect(noisy.r2).toBeCloseTo(0.64, 9);
    expect(linearFit([1], [1]).slope).toBeNaN();
    expect(linearFit([2, 2], [1, 5]).slope).toBeNaN();
  });

  it('takes exact nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(median([5, 1, 3])).toBe(3);
    expect(percentile([], 50)).toBeNaN();
  });

  it('reads dnsperf statistics', () => {
    const out = `Statistics:

  Queries sent:         137047
  Queries completed:    137040 (99.99%)
  Queries lost:         7 (0.01%)

  Response codes:       NOERROR 137040 (100.00%)
  Run time (s):         3.000141
  Queries per second:   45680.186365

  Average Latency (s):  0.000212 (min 0.000020, max 0.007184)
`;
    expect(parseDnsperf(out)).toEqual({ sent: 137047, completed: 137040, lost: 7, qps: 45680.186365, avgLatencyMs: 0.212, runTimeS: 3.000141 });
    expect(parseDnsperf('Error: no server')).toBeUndefined();
  });
});

describe('bench topology', () => {
  it('generates N nodes in the schema of three-node.yaml, validated as a cluster file is', () => {
    const three = loadTopology(TEMPLATE_TOPOLOGY);
    const gen = nodeTopology(3);
    const { name: _n1, description: _d1, ...restGen } = gen;
    const { name: _n2, description: _d2, ...restThree } = three;
    expect(restGen).toEqual(restThree);
    const fifty = nodeTopology(50);
    expect(fifty.nodeSpecs).toHaveLength(50);
    expect(fifty.dns.replicas).toHaveLength(50);
    expect(fifty.nodeSpecs[49]).toMatchObject({ name: 'node-50', ip: '172.18.0.51' });
    expect(fifty.nodeSpecs[49]!.podSubnet.text).toBe('10.244.49.0/24');
    expect(() => nodeTopology(1)).toThrow(/at least 2 nodes/);
  });

  it('reports a template the schema refuses, as for any cluster file', () => {
    const bad = nodeTopologyYaml(3).replace('mtu: 1450', 'mtu: 100');
    expect(() => loadTopology('bench:3-nodes', bad)).toThrow(ConfigError);
  });
});

describe('stall rule and resolv.conf', () => {
  it('drops the first query of every other new flow per client, before conntrack', () => {
    const rule = stallRuleset(['10.244.0.3', '10.244.0.4']);
    expect(rule).toContain('priority raw');
    expect(rule).toContain('udp dport 53 ip saddr . udp sport @seen accept');
    expect(rule.match(/numgen inc mod 2 0 counter drop/g)).toHaveLength(2);
    const listing = '\t\tip saddr 10.244.0.3 udp dport 53 add @seen { ip saddr . udp sport } numgen inc mod 2 0 counter packets 4 bytes 300 drop\n\t\tip saddr 10.244.0.4 udp dport 53 add @seen { ip saddr . udp sport } numgen inc mod 2 0 counter packets 3 bytes 225 drop\n';
    expect(stallDrops(listing)).toEqual({ '10.244.0.3': 4, '10.244.0.4': 3 });
  });

  it('points resolv.conf at one server and keeps search and options', () => {
    const rc = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';
    expect(withNameserver(rc, '10.244.0.2')).toBe('search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.244.0.2\noptions ndots:5\n');
  });
});

// --- targets and Markdown on a result built by hand ------------------------------------------------------

function accuracy(libc: 'musl' | 'glibc', kind: 'baseline' | 'stall', stallMs: number): AccuracyRun {
  return {
    libc,
    kind,
    target: 'kube-dns.kube-system.svc.cluster.local.',
    lookups: 10,
    compared: 10,
    captureDrops: 0,
    pcap: `capture/${libc}-${kind}.pcap`,
    probe: { p50Us: 200, p99Us: 400, maxUs: 900 },
    capture: { p50Us: 140, p99Us: 300, maxUs: 800 },
    p50DiffUs: 60,
    p99DiffUs: 100,
    perLookupErrorUs: { min: 20, p50: 60, p99: 150, max: 300 },
    alignJitterUs: 80,
    stalls: kind === 'stall' ? [{ captureMs: stallMs, probeMs: stallMs + 0.1, errorMs: 0.1, relError: 0.1 / stallMs }] : [],
  };
}

function result(): BenchResult {
  const r: BenchResult = {
    schemaVersion: BENCH_SCHEMA_VERSION,
    runId: 'abc123',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationS: 312.4,
    quick: false,
    machine: { hostname: 'h', cpus: 2, cpuModel: 'AMD EPYC', memGiB: 23.5, kernel: '6.18.0', os: 'Debian GNU/Linux 12 (bookworm)', node: 'v20.20.2', tools: {} },
    lifecycle: {
      runs: [],
      sizes: [
        { nodes: 3, reps: 3, upMs: 900, downMs: 400, memUsedMiB: 20, rssMiB: 15, steps: { nodes: 100 } },
        { nodes: 10, reps: 2, upMs: 3000, downMs: 700, memUsedMiB: 30, rssMiB: 40, steps: { nodes: 300 } },
        { nodes: 25, reps: 1, upMs: 7000, downMs: 1500, memUsedMiB: 150, rssMiB: 100, steps: { nodes: 700 } },
        { nodes: 50, reps: 1, upMs: 31_000, downMs: 3600, memUsedMiB: 760, rssMiB: 200, steps: { nodes: 1500 } },
      ],
      upFit: linearFit([3, 10, 25, 50], [900, 3000, 7000, 31_000]),
      downFit: linearFit([3, 10, 25, 50], [400, 700, 1500, 3600]),
      upSegmentsMsPerNode: [],
      skipped: [],
    },
    accuracy: { runs: [accuracy('musl', 'baseline', 0), accuracy('glibc', 'baseline', 0), accuracy('musl', 'stall', 2500), accuracy('glibc', 'stall', 5000)] },
    headroom: {
      runs: [
        { target: 'replica', server: '10.244.0.2', inFlight: 32, durationS: 5, dnsperf: { sent: 1, completed: 1, lost: 0, qps: 50_000, avgLatencyMs: 0.2, runTimeS: 5 }, dnsperfRuns: [], probes: [{ libc: 'musl', lookups: 1, errors: 0, wallS: 5, lookupsPerS: 20_000, qps: 40_000, ratio: 0.8 }] },
        { target: 'clusterIP', server: '10.96.0.10', inFlight: 32, durationS: 5, dnsperf: { sent: 1, completed: 1, lost: 0, qps: 40_000, avgLatencyMs: 0.2, runTimeS: 5 }, dnsperfRuns: [], probes: [{ libc: 'musl', lookups: 1, errors: 0, wallS: 5, lookupsPerS: 8000, qps: 16_000, ratio: 0.4 }] },
      ],
    },
    suites: { runs: [{ suite: 'flannel-arp', quick: true, runId: 'abc123-arpq', wallS: 50, cells: 6, failed: 0, verdicts: { pass: 6 }, reportDir: 'suites/abc123-arpq' }], skipped: [{ what: 'flannel-arp full', reason: 'bench --quick' }] },
    loadAverage: { start: 0.4, end: 2.5 },
    otherRuns: [],
    errors: [],
    targets: [],
  };
  r.targets = evaluateTargets(r);
  return r;
}

describe('targets and Markdown', () => {
  it('judges each goal, the headroom goal on the replica only, and leaves what was not measured open', () => {
    const t = Object.fromEntries(result().targets.map((x) => [x.id, x]));
    expect(t['lifecycle.up3']!.pass).toBe(true);
    expect(t['lifecycle.down3']!.pass).toBe(true);
    expect(t['lifecycle.up50']!.pass).toBe(false);
    expect(t['lifecycle.linear']!.pass).toBe(false);
    expect(t['accuracy.p50.musl']!.pass).toBe(true);
    expect(t['accuracy.stall.glibc']!.pass).toBe(true);
    expect(t['accuracy.stall.glibc']!.what).toContain('5.00 s stall');
    expect(t['headroom.musl']!).toMatchObject({ pass: true, measured: '80 %' });
    expect(t['suite.full']!).toMatchObject({ pass: null, note: 'bench --quick' });
    expect(t['bench.total']!.pass).toBe(true);
  });

  it('a failed section shows as not measured, with its error', () => {
    const r = result();
    delete r.accuracy;
    r.errors.push({ section: 'accuracy', message: 'tcpdump in client-musl did not start capturing within 5 s\nmore' });
    r.targets = evaluateTargets(r);
    const acc = r.targets.find((x) => x.id === 'accuracy.p50')!;
    expect(acc).toMatchObject({ pass: null, note: 'tcpdump in client-musl did not start capturing within 5 s' });
    expect(renderMarkdown(r)).toContain('- accuracy: tcpdump in client-musl did not start capturing within 5 s\n');
    r.errors = [{ section: 'cluster for accuracy and headroom', message: 'cluster DNS not ready' }];
    expect(evaluateTargets(r).find((x) => x.id === 'accuracy.p50')!.note).toBe('cluster DNS not ready');
  });

  it('says when other runs shared the machine', () => {
    const r = result();
    expect(renderMarkdown(r)).not.toContain('Other vxchaos runs');
    r.otherRuns = ['137d29'];
    expect(renderMarkdown(r)).toContain('Other vxchaos runs were active on this machine during the bench (137d29; load average 0.4 at start, 2.5 at end)');
  });

  it('renders the drop tracer overhead: both paths, and a path where the program never ran', () => {
    const r = result();
    r.drops = {
      threads: 2,
      durationS: 3,
      reps: 1,
      runs: [],
      summary: [
        { path: 'clean', connectsPerSOff: 10_000, connectsPerSOn: 9_900, slowdown: 0.01, dropsPerConnect: 0, nsPerDrop: undefined },
        { path: 'drops', connectsPerSOff: 14_000, connectsPerSOn: 13_300, slowdown: 0.05, dropsPerConnect: 1, nsPerDrop: 652.4 },
      ],
    };
    const md = renderMarkdown(r);
    expect(md).toContain('| clean (accepted) | 10,000/s | 9,900/s | 1.0 % | 0.00 | — (never ran) |');
    expect(md).toContain('| drop-heavy (closed port) | 14,000/s | 13,300/s | 5.0 % | 1.00 | 652 ns per drop |');
    expect(renderMarkdown(result())).not.toContain('Drop tracer overhead');
  });

  it('renders the targets table first, then a table per measurement', () => {
    const md = renderMarkdown(result());
    const lines = md.split('\n');
    expect(lines[0]).toBe('## vxchaos bench abc123');
    expect(lines[2]).toContain('2 × AMD EPYC, 23.5 GiB RAM, kernel 6.18.0');
    expect(lines[4]).toBe('| Measurement | Goal | Measured |  |');
    expect(md).toContain('| 3-node cluster up | < 1.00 s | 900 ms | ✅ |');
    expect(md).toContain('| 50-node cluster up | < 10.0 s | 31.0 s | ❌ |');
    expect(md).toContain('| flannel-arp full matrix wall time | < 3 min | — (bench --quick) | — |');
    expect(md).toContain('| 50 | — | 31.0 s | 3.60 s | 200 MiB | 760 MiB |  | 1 |');
    expect(md).toContain('| nodes | 100 ms | 300 ms | 700 ms | 1.50 s |');
    expect(md).toContain('| glibc | 1 | 5.00 s – 5.00 s | 5.00 s – 5.00 s | 0.100 ms – 0.100 ms | 0.002 % |');
    expect(md).toContain('| clusterIP 10.96.0.10 | 32 | 40,000/s q | musl 16,000/s q | 8,000/s | 40 % |');
    expect(md).toContain('| flannel-arp --quick | 6 | 50.0 s | 6 pass |');
    // every table row has as many cells as its header
    for (const block of md.split('\n\n').filter((b) => b.startsWith('|'))) {
      const widths = block.split('\n').filter(Boolean).map((l) => l.split(/(?<!\\)\|/).length);
      expect(new Set(widths).size).toBe(1);
    }
  });
});

describe('suite wall time and verdict agreement (issue 14)', () => {
  const run = (suite: string, rep: number, wallS: number, cellVerdicts: Record<string, string>, quick = true) => ({
    suite, quick, rep, runId: `abc123-${suite}${rep}`, wallS, cells: Object.keys(cellVerdicts).length, failed: 0, verdicts: {}, cellVerdicts, reportDir: '',
  });

  it('verdictAgreement: per suite, the cells whose verdict changed between --quick runs, in run order', () => {
    const g = verdictAgreement([
      run('flannel-arp', 1, 30, { a: 'pass', b: 'pass' }),
      run('conntrack-race', 1, 60, { n: 'not-reproduced' }),
      run('flannel-arp', 2, 31, { a: 'pass', b: 'inconclusive' }),
      run('conntrack-race', 2, 61, { n: 'not-reproduced' }),
      run('flannel-arp', 1, 90, { a: 'fail', b: 'fail' }, false),
    ]);
    expect(g).toEqual([
      { suite: 'flannel-arp', runs: 2, cells: 2, unanimous: 1, changed: [{ cell: 'b', verdicts: ['pass', 'inconclusive'] }] },
      { suite: 'conntrack-race', runs: 2, cells: 1, unanimous: 1, changed: [] },
    ]);
  });

  it('targets: the quick suites back to back against 2 min, each full suite against 5 min, agreement on every cell', () => {
    const r = result();
    r.suites = {
      runs: [run('flannel-arp', 1, 30, { a: 'pass' }), run('dead-upstream', 1, 100, { a: 'pass' }), run('flannel-arp', 2, 31, { a: 'fail' }), run('dead-upstream', 2, 98, { a: 'pass' }), run('dead-upstream', 1, 320, { a: 'pass' }, false)],
      skipped: [],
      quickTotalS: 130,
    };
    r.suites.agreement = verdictAgreement(r.suites.runs);
    const t = Object.fromEntries(evaluateTargets(r).map((x) => [x.id, x]));
    expect(t['suite.quick']).toMatchObject({ what: '2 suites --quick back to back', measured: '130.0 s', pass: false });
    expect(t['suite.full.dead-upstream']).toMatchObject({ pass: false, measured: '320.0 s' });
    expect(t['suite.agreement']).toMatchObject({ measured: '1 of 2 cells', pass: false });
    r.targets = evaluateTargets(r);
    const md = renderMarkdown(r);
    expect(md).toContain('| flannel-arp | 2 | 1 | 0 | a: pass → fail |');
    expect(md).toContain('| flannel-arp --quick #2 | 1 | 31.0 s |');
  });
});

describe('kernels in a qemu guest (issue 12)', () => {
  it('renders a row per kernel (boot, in-guest up, accel, clocksource), a failed kernel with its step, and the steps per release', () => {
    const r = result();
    r.kernels = {
      runs: [
        { spec: 'debian:bookworm', release: '6.1.0-57-amd64', source: 'debian:bookworm linux-image-6.1.0-57-amd64 6.1.158-1', accel: 'tcg', clocksource: 'hpet', bootMs: 11_200, bootWallMs: 31_500, upMs: 19_400, steps: { 'underlay fabric': 900, nodes: 6100 }, resolving: { ok: 2, of: 2 }, downMs: 3300, stopMs: 800, leftovers: [] },
        { spec: 'debian:bullseye', release: '5.10.0-46-amd64', accel: 'tcg', clocksource: 'tsc', bootMs: 9800, stopMs: 700, error: 'cluster up: unbound did not start' },
      ],
    };
    const md = renderMarkdown(r);
    expect(md).toContain('| kernel | release | accel | clocksource | VM boot | bootGuest | 3-node up | clients resolving | down | VM stop |');
    expect(md).toContain('| debian:bookworm | 6.1.0-57-amd64 | tcg | hpet | 11.2 s | 31.5 s | 19.4 s | 2/2 | 3.30 s | 800 ms |');
    expect(md).toContain('| debian:bullseye | 5.10.0-46-amd64 | tcg | tsc | 9.80 s | — | — | — | — | ✗ cluster up: unbound did not start |');
    expect(md).toContain('| step | 6.1.0-57-amd64 | 5.10.0-46-amd64 |');
    expect(md).toContain('| nodes | 6.10 s | — |');
    expect(md).toContain('TCG: qemu emulates the CPU');
    expect(renderMarkdown(result())).not.toContain('Kernels in a qemu guest');
    for (const block of md.split('\n\n').filter((b) => b.startsWith('|'))) {
      const widths = block.split('\n').filter(Boolean).map((l) => l.split(/(?<!\\)\|/).length);
      expect(new Set(widths).size).toBe(1);
    }
  });

  it('a run of some sections judges only their goals and says which it measured', () => {
    const r = result();
    r.sections = ['kernels'];
    r.targets = evaluateTargets(r);
    const md = renderMarkdown(r);
    expect(md).toContain('Sections measured: kernels.');
    expect(md).not.toContain('3-node cluster up |');
    expect(md).not.toContain('probe error at p50');
    expect(md).toContain('| whole bench (this run) | < 10 min | 312.4 s (only kernels) |');
  });
});

describe('untilQuiet: a build or measurement starts on a quiet machine', () => {
  it('stops at the first half-second look that is quiet enough, and waits no longer than asked', async () => {
    // Any share is under 101 %: the first look ends it.
    const quiet = await untilQuiet(5_000, 1.01);
    expect(quiet).toBeGreaterThanOrEqual(450);
    expect(quiet).toBeLessThan(2_000);
    // No share is under −1: it waits to the end, and not much beyond.
    const never = await untilQuiet(1_200, -1);
    expect(never).toBeGreaterThanOrEqual(1_200);
    expect(never).toBeLessThan(3_000);
  });
});
