/** The matrix JSON contract (DESIGN.md). Fields may be added; none renamed or dropped without a schemaVersion bump. */
export const SCHEMA_VERSION = 1;

export type Expectation = 'reproduces' | 'clean';
export type Verdict = 'pass' | 'fail' | 'not-reproduced';

export interface Cell {
  client: string;
  fault: string;
  /** The fault's mode (mac-churn: stale-peers | live-peers; others: native | emulated); "none" for baselines. */
  faultMode: string;
  mitigation: string;
  workload: 'resolve' | 'connect';
  target: string;
  samples: number;
  errors: number;
  errorRate: number;
  errorsByKind: Record<string, number>;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  thresholdMs: number;
  overThreshold: number;
  /** Kernel counters: deltas over the measurement, summed over nodes, plus fault-specific measurements. */
  counters: Record<string, number>;
  expectation: Expectation;
  verdict: Verdict;
  // ---- additions (allowed by the contract) ----
  /** Why the verdict is what it is: expected vs seen, in words. */
  reason: string;
  /** Lookups that failed or took longer than thresholdMs, over samples. */
  affectedRate: number;
  threads: number;
  durationS: number;
  /** Fresh resolver state per lookup (short-lived clients). */
  fresh: boolean;
  /** Where the probe ran: the client pod or its node's own namespace. */
  source?: 'pod' | 'node';
  /** The suite's label for this cell when client × fault × mitigation is not unique (e.g. "pod control"). */
  name?: string;
  /** Latencies in µs as an HdrHistogram, compressed base64 (hdr-histogram-js encodeIntoCompressedBase64). */
  histogram: string;
  /** Per-node counter deltas. */
  countersByNode: Record<string, Record<string, number>>;
  /** Median latency of the affected lookups in ms (how long a stall lasts: musl 2.5 s, glibc 5 s); 0 if none. */
  stallP50Ms?: number;
  /** The stall level the suite expected, [min, max] ms, when it set one. */
  expectedStallMs?: [number, number];
}

export interface Matrix {
  schemaVersion: number;
  suite: string;
  provider: string;
  runId: string;
  startedAt: string;
  durationS: number;
  kernel: string;
  host: Record<string, string>;
  cells: Cell[];
  // additions
  quick: boolean;
  description: string;
  /** Cells whose verdict makes the run exit non-zero. */
  failed: number;
}

export interface ExpectationSpec {
  expect: Expectation;
  /** reproduces: at least this share of lookups must be affected (failed or over threshold). */
  minAffectedRate: number;
  /** reproduces: and at most this share (e.g. ~1/3 when one of three replicas is unreachable). */
  maxAffectedRate: number;
  /** clean: at most this share may be affected. */
  maxCleanAffectedRate: number;
  /** clean: p99 must stay under this. */
  maxCleanP99Ms: number;
  /** reproduces: the median latency of the affected lookups must fall in [min, max] ms (musl ≈ 2.5 s, glibc ≈ 5 s). */
  stallMs?: readonly [number, number];
}

export interface Measured {
  samples: number;
  errors: number;
  overThreshold: number;
  p99Ms: number;
  errorsByKind: Record<string, number>;
  /** Median latency of the affected lookups (ms); 0 when none was affected. */
  stallP50Ms?: number;
}

/** Failed lookups count once; slow but successful ones count as affected too. */
export function affectedOf(m: Pick<Measured, 'errors' | 'overThreshold'>, overThresholdErrors: number): number {
  return m.errors + m.overThreshold - overThresholdErrors;
}

/**
 * The verdict for one cell, as data in, words out. A `reproduces` cell that shows no symptom is
 * `not-reproduced` (a result, not a pass); a `clean` cell with symptoms fails.
 */
export function judge(spec: ExpectationSpec, m: Measured, affected: number): { verdict: Verdict; reason: string } {
  const rate = m.samples > 0 ? affected / m.samples : 0;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const kinds = Object.entries(m.errorsByKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
  const seen = `${affected}/${m.samples} affected (${pct(rate)})${kinds ? `, errors ${kinds}` : ''}, p99 ${m.p99Ms.toFixed(1)} ms`;
  if (m.samples === 0) return { verdict: 'fail', reason: 'no samples were measured' };
  if (spec.expect === 'clean') {
    if (rate > spec.maxCleanAffectedRate) return { verdict: 'fail', reason: `expected clean (≤ ${pct(spec.maxCleanAffectedRate)} affected), saw ${seen}` };
    if (m.p99Ms > spec.maxCleanP99Ms) return { verdict: 'fail', reason: `expected clean (p99 ≤ ${spec.maxCleanP99Ms} ms), saw ${seen}` };
    return { verdict: 'pass', reason: `clean as expected: ${seen}` };
  }
  if (rate < spec.minAffectedRate) return { verdict: 'not-reproduced', reason: `expected the symptom (≥ ${pct(spec.minAffectedRate)} affected), saw ${seen}` };
  if (rate > spec.maxAffectedRate) return { verdict: 'fail', reason: `expected ${pct(spec.minAffectedRate)}–${pct(spec.maxAffectedRate)} affected, saw ${seen}` };
  if (spec.stallMs) {
    const [lo, hi] = spec.stallMs;
    const stall = m.stallP50Ms ?? 0;
    const withStall = `${seen}, affected lookups' median ${stall.toFixed(0)} ms`;
    if (stall < lo || stall > hi) return { verdict: 'fail', reason: `expected stalls of ${lo}–${hi} ms (median of affected lookups), saw ${withStall}` };
    return { verdict: 'pass', reason: `reproduced as expected: ${withStall}` };
  }
  return { verdict: 'pass', reason: `reproduced as expected: ${seen}` };
}

/**
 * Whether a cell makes the run exit non-zero. `fail` always does. `not-reproduced` does only where the
 * harness itself guarantees the symptom — an emulated or harness-made fault on the netns provider, where
 * not reproducing means the harness broke. A `native` fault (only the trigger: does this kernel still have
 * the bug?) and any fault on real components (kind: did this version fix it?) report it as a finding.
 */
export function countsAsFailure(cell: Pick<Cell, 'verdict' | 'faultMode'>, provider: string): boolean {
  if (cell.verdict === 'fail') return true;
  return cell.verdict === 'not-reproduced' && cell.faultMode !== 'native' && provider === 'netns';
}
