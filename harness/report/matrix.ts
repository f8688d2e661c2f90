import { DEFAULT_CONFIDENCE } from '../measure/confidence.ts';
import { DEFAULT_DECIDE_OPTIONS, decide, minAffectedForStallAt, minSamplesForP99At } from '../measure/settle.ts';
import type { CauseCheck } from '../measure/cause.ts';
import type { CellDrops } from '../measure/cell-drops.ts';

/** The matrix JSON contract (DESIGN.md). Fields may be added; none renamed or dropped without a schemaVersion bump. */
export const SCHEMA_VERSION = 1;

export type Expectation = 'reproduces' | 'clean';
/**
 * `skipped`: the provider cannot do what the cell needs (the reason says what), nothing was measured.
 * `error`: the cell threw (the reason carries the message); its changes were undone and the run went on.
 * `inconclusive`: measured to its cap without the interval deciding either way (the reason gives it).
 */
export type Verdict = 'pass' | 'fail' | 'not-reproduced' | 'inconclusive' | 'skipped' | 'error';
export const VERDICTS: readonly Verdict[] = ['pass', 'fail', 'not-reproduced', 'inconclusive', 'skipped', 'error'];

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
  /** Lookups that failed or took longer than thresholdMs, each counted once (classify in measure/). */
  affected?: number;
  /** Whether this cell's verdict makes the run exit non-zero (decided once, by failsRun). */
  failsRun?: boolean;
  /** The affected share's two-sided interval [lo, hi] at `confidence` (measure/confidence.ts). */
  affectedInterval?: [number, number];
  /** The confidence the verdict was decided at (0.95 unless the suite says otherwise). */
  confidence?: number;
  /**
   * Why and when measuring stopped: `settled` = the verdict was decided before the cap, `cap` = the cell's
   * duration ran out. afterSamples: lookups counted at that moment (samples may hold a few more, measured
   * while the probe was being stopped); `inFlight`: affected lookups cut short by the stop, counted.
   */
  stopped?: { by: 'settled' | 'cap'; afterSamples: number; afterMs: number; inFlight?: number };
  /** Packets the kernel dropped in the run's namespaces during the measurement (where, why); measured cells only. */
  drops?: CellDrops;
  /** The suite's declared cause and how many packets it dropped (measure/cause.ts). */
  cause?: CauseCheck;
  /** A clean cell whose fault's cause still dropped packets: how many (flagged, verdict unchanged). */
  causeStillDropping?: number;
  /** The run id of the cluster the cell ran on, when the run measured on several side by side (`vxchaos down <runId>` removes them all). */
  cluster?: string;
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
  /** The kernel under test in full (kernel above is its release); the harness's own host is in host.kernel. */
  kernelUnderTest?: { release: string; version: string; source: string; notes?: Record<string, string> };
  quick: boolean;
  description: string;
  /** Cells whose verdict makes the run exit non-zero. */
  failed: number;
  /**
   * How many clusters measured the cells side by side, when more than one (absent: one, every cell in turn).
   * They share the machine's CPUs, so latencies (p99) are comparable only between runs of the same number.
   */
  clusters?: number;
}

/** What a cell must show; a union on `expect`, so a clean cell's tolerance is never read as a range bound. */
export type ExpectationSpec =
  | {
      expect: 'reproduces';
      /** The share of affected lookups must fall in [min, max] (e.g. ~1/3 when one of three replicas is unreachable). */
      affectedRate: readonly [number, number];
      /** The median latency of the affected lookups must fall in [min, max] ms (musl ≈ 2.5 s, glibc ≈ 5 s). */
      stallMs?: readonly [number, number];
    }
  | {
      expect: 'clean';
      /** The share of affected lookups tolerated. */
      tolerance: number;
      /** p99 must stay under this. */
      maxP99Ms: number;
    };

/** What judge reads of a measurement: classify(samples) in measure/classify.ts makes it. */
export interface Measured {
  samples: number;
  /** Failed or over the threshold, each lookup counted once. */
  affected: number;
  p99Ms: number;
  errorsByKind: Record<string, number>;
  /** Median latency of the affected lookups (ms); 0 when none was affected. */
  stallP50Ms: number;
}

/**
 * The verdict for a whole measurement at the given confidence: measure/settle.ts's decide(), the one rule the
 * runner's Settler also stops by. A `reproduces` cell whose interval lies below its range is `not-reproduced`
 * (a result, not a pass); one the interval cannot place is `inconclusive`; a `clean` cell with symptoms fails.
 */
export function judge(spec: ExpectationSpec, m: Measured, confidence = DEFAULT_CONFIDENCE): { verdict: Verdict; reason: string; interval: [number, number] } {
  const d = decide(spec, m, { ...DEFAULT_DECIDE_OPTIONS, confidence, minAffectedForStall: minAffectedForStallAt(confidence), minSamplesForP99: minSamplesForP99At(confidence) });
  return { verdict: d.verdict, reason: `${d.reason}${errorKinds(m.errorsByKind)}`, interval: d.interval };
}

/** ", errors EAI_AGAIN×3, ETIMEDOUT×1" or nothing. */
export function errorKinds(errorsByKind: Record<string, number>): string {
  const kinds = Object.entries(errorsByKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
  return kinds ? `; errors ${kinds}` : '';
}

/**
 * The one place that decides whether a verdict makes the run exit non-zero. `fail`, `error` and `inconclusive` always do;
 * `skipped` never does. `not-reproduced` does only where the harness itself guarantees the symptom: a fault
 * that is not `native` on a provider whose capabilities say symptomsGuaranteed (an emulated control plane,
 * where not reproducing means the harness broke). A `native` fault (does this kernel still have the bug?)
 * and any fault on real components (did this version fix it?) report it as a finding.
 */
export function failsRun(verdict: Verdict, faultMode: string, symptomsGuaranteed: boolean): boolean {
  // `inconclusive` fails too: a gate that passes on a measurement which showed nothing either way is green by
  // luck; the reason names the interval, and the fix (a longer cap, a wider range) is the suite's to make.
  if (verdict === 'fail' || verdict === 'error' || verdict === 'inconclusive') return true;
  return verdict === 'not-reproduced' && faultMode !== 'native' && symptomsGuaranteed;
}

/** Whether a cell of a written matrix fails the run: its recorded decision, or for older matrices its verdict. */
export function cellFailsRun(cell: Pick<Cell, 'verdict' | 'failsRun'>): boolean {
  return cell.failsRun ?? (cell.verdict === 'fail' || cell.verdict === 'error');
}
