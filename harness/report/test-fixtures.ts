/**
 * Matrices for the reporter tests, built the way the engine builds them: latencies recorded into a real
 * HdrHistogram (µs), percentiles read back from it, verdicts from matrix.ts's judge().
 */
import { build, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { failsRun, SCHEMA_VERSION, judge, type Cell, type ExpectationSpec, type Matrix } from './matrix.ts';

export interface CellShape {
  client: string;
  fault?: string;
  faultMode?: string;
  mitigation?: string;
  workload?: Cell['workload'];
  target?: string;
  samples?: number;
  /** Lookups that fail (EAI_AGAIN) after slowMs. */
  errors?: number;
  /** Lookups that succeed, but only after slowMs. */
  slow?: number;
  slowMs?: number;
  /** Healthy lookups spread log-uniformly between these (ms). */
  fastMs?: [number, number];
  /** Whether failed lookups still get a latency in the histogram (the engine may record them or not). */
  recordErrors?: boolean;
  expectation?: Cell['expectation'];
  thresholdMs?: number;
  counters?: Record<string, number>;
  reasonSuffix?: string;
}

export const SPECS: Record<Cell['expectation'], ExpectationSpec> = {
  reproduces: { expect: 'reproduces', affectedRate: [0.2, 0.5] },
  clean: { expect: 'clean', tolerance: 0.001, maxP99Ms: 100 },
};

/** A small deterministic PRNG (mulberry32): the same fixture on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeCell(s: CellShape, seed = 1): Cell {
  const samples = s.samples ?? 5000;
  const errors = s.errors ?? 0;
  const slow = s.slow ?? 0;
  const slowMs = s.slowMs ?? 5000;
  const [lo, hi] = s.fastMs ?? [0.3, 0.9];
  const thresholdMs = s.thresholdMs ?? 1000;
  const random = rng(seed);
  const h = build({ numberOfSignificantValueDigits: 3 });
  // Bad lookups are spread evenly through the run, as a fault that hits every n-th packet would.
  const bad = errors + slow;
  for (let i = 0; i < samples; i++) {
    const isBad = bad > 0 && Math.floor(((i + 1) * bad) / samples) > Math.floor((i * bad) / samples);
    const isError = isBad && Math.floor(((i + 1) * bad) / samples) <= errors;
    if (isBad) {
      if (!isError || s.recordErrors !== false) h.recordValue(Math.round(slowMs * 1000 * (1 + random() * 0.002)));
    } else {
      h.recordValue(Math.round(lo * 1000 * (hi / lo) ** random()));
    }
  }
  // HDR percentiles are bucket upper bounds; cap them at the true max so p99 ≤ max reads sensibly.
  const at = (p: number) => Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000;
  const overThreshold = slowMs > thresholdMs ? slow : 0;
  const errorsByKind: Record<string, number> = errors ? { EAI_AGAIN: errors } : {};
  const expectation = s.expectation ?? (s.fault && s.fault !== 'none' && (s.mitigation ?? 'none') === 'none' ? 'reproduces' : 'clean');
  const m = { samples, affected: errors + overThreshold, p99Ms: at(99), errorsByKind, stallP50Ms: 0 };
  const { verdict, reason } = judge(SPECS[expectation], m);
  const cell: Cell = {
    client: s.client,
    fault: s.fault ?? 'none',
    faultMode: s.faultMode ?? 'none',
    mitigation: s.mitigation ?? 'none',
    workload: s.workload ?? 'resolve',
    target: s.target ?? 'web.default.svc.cluster.local',
    samples,
    errors,
    errorRate: samples ? errors / samples : 0,
    errorsByKind,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: h.maxValue / 1000,
    thresholdMs,
    overThreshold,
    counters: s.counters ?? { 'conntrack.insert_failed': 0, 'udp.InCsumErrors': 0 },
    expectation,
    verdict,
    failsRun: failsRun(verdict, s.faultMode ?? 'none', true),
    reason: reason + (s.reasonSuffix ?? ''),
    affectedRate: samples ? (errors + overThreshold) / samples : 0,
    threads: 4,
    durationS: 10,
    fresh: false,
    histogram: encodeIntoCompressedBase64(h),
    countersByNode: { 'node-a': s.counters ?? {}, 'node-b': {} },
  };
  h.destroy();
  return cell;
}

export function makeMatrix(cells: Cell[], over: Partial<Matrix> = {}): Matrix {
  return {
    schemaVersion: SCHEMA_VERSION,
    suite: 'flannel-arp',
    provider: 'netns',
    runId: 'flannel-arp-20250101-000000-abcd',
    startedAt: '2025-01-01T00:00:00.000Z',
    durationS: cells.reduce((s, c) => s + c.durationS, 0),
    kernel: '6.1.0-test',
    host: { hostname: 'runner-1', cpus: '2', musl: '1.2.3', glibc: '2.36' },
    cells,
    quick: false,
    description: 'A node reboots and flanneld recreates flannel.1 with a new VtepMAC.',
    failed: cells.filter((c) => c.verdict === 'fail').length,
    ...over,
  };
}

/**
 * The mac-churn story: one of three DNS replicas unreachable → 1/3 of lookups fail after 5 s unmitigated;
 * neigh-resync fixes musl; glibc's resync cell is made to fail and its unmitigated cell not to reproduce.
 */
export function macChurnMatrix(over: Partial<Matrix> = {}): Matrix {
  const third = Math.round(5000 / 3);
  const counters = { 'conntrack.insert_failed': 0, 'udp.InCsumErrors': 0, 'neigh.stale': 1 };
  return makeMatrix(
    [
      makeCell({ client: 'musl' }, 1),
      makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', errors: third, counters }, 2),
      makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync' }, 3),
      makeCell({ client: 'glibc' }, 4),
      makeCell({ client: 'glibc', fault: 'mac-churn', faultMode: 'stale-peers' }, 5),
      makeCell({ client: 'glibc', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync', errors: third, slowMs: 20000, counters }, 6),
    ],
    over,
  );
}
