/**
 * The statistical verdict of a cell and the rule that stops measuring it once that verdict is settled.
 * Pure code: samples in, decisions out; the runner owns the probe and the clock.
 */
import { DEFAULT_CONFIDENCE, type Interval, type IntervalMethod, fmtShare, fmtShareWithInterval, proportionInterval } from './confidence.ts';
import { newHistogram } from './histogram.ts';
import type { Sample } from './probe.ts';

export type Expectation =
  | { expect: 'reproduces'; affectedRate: readonly [number, number]; stallMs?: readonly [number, number] }
  | { expect: 'clean'; tolerance: number /* max share of affected lookups tolerated */; maxP99Ms: number };

export interface Classified {
  samples: number;
  affected: number;
  p99Ms: number;
  /** Median latency of the affected lookups, ms (0 when none). */
  stallP50Ms: number;
  /** How many completed affected lookups stallP50Ms is the median of, when not all of `affected` (in-flight ones are not). */
  stallSamples?: number;
}

export type SettledVerdict = 'pass' | 'fail' | 'not-reproduced' | 'inconclusive';

export interface Decision {
  verdict: SettledVerdict;
  /** The affected share's two-sided interval at the decision's confidence. */
  interval: [number, number];
  reason: string;
}

export interface DecideOptions {
  confidence: number;
  /** The stall window is judged only on at least this many affected lookups. */
  minAffectedForStall: number;
  /** p99 is judged only on at least this many lookups. */
  minSamplesForP99: number;
  method?: IntervalMethod;
}

/**
 * Tolerated share of affected lookups in a `clean` cell that sets none. A share of exactly zero can never be
 * shown by sampling; 0.2 % is shown by 1,920 clean lookups at 95 %, which the slowest clean cell here (glibc
 * over TCP, ~3,200 lookups in a --quick run) reaches with room to spare, and stays far below the smallest
 * share a reproducing cell shows (~1 %). It is also the tolerance dead-upstream already set for itself.
 */
export const DEFAULT_CLEAN_TOLERANCE = 0.002;

/**
 * Fewest affected lookups whose smallest and largest bracket the true median stall with the given
 * confidence (P = 1 − 2·0.5^m, distribution-free): 6 at 95 %.
 */
export function minAffectedForStallAt(confidence: number): number {
  return Math.max(1, Math.ceil(Math.log2(2 / (1 - confidence)) - 1e-9));
}

/** Fewest lookups for which even the largest is an upper bound of the true p99 with the given confidence: 299 at 95 %. */
export function minSamplesForP99At(confidence: number): number {
  return Math.ceil(Math.log(1 - confidence) / Math.log(0.99) - 1e-9);
}

export const DEFAULT_DECIDE_OPTIONS: Required<DecideOptions> = {
  confidence: DEFAULT_CONFIDENCE,
  minAffectedForStall: minAffectedForStallAt(DEFAULT_CONFIDENCE),
  minSamplesForP99: minSamplesForP99At(DEFAULT_CONFIDENCE),
  method: 'wilson',
};

const fmtCount = (n: number) => `${n.toLocaleString('en-US')} lookup${n === 1 ? '' : 's'}`;

function fmtMs(ms: number): string {
  if (ms >= 100) return Math.round(ms).toLocaleString('en-US');
  return ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

/**
 * The verdict for what was measured so far, at the given confidence. `inconclusive` says the interval
 * (or too few lookups) cannot tell yet; it is a result, never a pass.
 */
export function decide(exp: Expectation, c: Classified, opts: DecideOptions): Decision {
  const o = { ...DEFAULT_DECIDE_OPTIONS, ...opts };
  const iv: Interval = proportionInterval(c.affected, c.samples, o.confidence, o.method);
  const interval: [number, number] = [iv[0], iv[1]];
  const [lo, hi] = iv;
  if (c.samples === 0) return { verdict: 'fail', interval, reason: 'no samples were measured' };
  const seen = `${fmtShareWithInterval(c.affected / c.samples, iv)} affected of ${fmtCount(c.samples)}`;
  const out = (verdict: SettledVerdict, ...words: string[]): Decision => ({ verdict, interval, reason: [seen, ...words].join(', ') });

  if (exp.expect === 'clean') {
    const tolerated = `tolerated ≤ ${fmtShare(exp.tolerance)} %`;
    const p99Judged = c.samples >= o.minSamplesForP99;
    const p99 = `p99 ${fmtMs(c.p99Ms)} ms`;
    if (lo > exp.tolerance) return out('fail', `${tolerated}: above the tolerance`);
    if (p99Judged && c.p99Ms > exp.maxP99Ms) return out('fail', `${p99} above ${fmtMs(exp.maxP99Ms)} ms`);
    // An unbounded p99 (not judged on this provider: the cell's reason says why) is reported as measured.
    if (hi < exp.tolerance && p99Judged) return out('pass', tolerated, Number.isFinite(exp.maxP99Ms) ? `${p99} ≤ ${fmtMs(exp.maxP99Ms)} ms` : p99);
    const open: string[] = [];
    if (hi >= exp.tolerance) open.push(`${tolerated}: the upper bound is not below it yet`);
    if (!p99Judged) open.push(`${p99} not judged on fewer than ${fmtCount(o.minSamplesForP99)}`);
    return out('inconclusive', ...open);
  }

  const [min, max] = exp.affectedRate;
  const expected = `expected ${fmtShare(min)}–${fmtShare(max)} %`;
  if (hi < min) return out('not-reproduced', `${expected}: below the range`);
  if (lo > max) return out('fail', `${expected}: above the range`);
  const inside = lo >= min && hi <= max;
  if (!exp.stallMs) return inside ? out('pass', expected) : out('inconclusive', `${expected}: the interval straddles the range's ${lo < min ? 'lower' : 'upper'} edge`);

  const [stallLo, stallHi] = exp.stallMs;
  const stallWords = `affected lookups' median ${fmtMs(c.stallP50Ms)} ms (expected ${fmtMs(stallLo)}–${fmtMs(stallHi)} ms)`;
  const stallJudged = (c.stallSamples ?? c.affected) >= o.minAffectedForStall;
  // Stalls of the wrong length fail the cell even while the share is still open: the symptom is not the expected one.
  if (stallJudged && (c.stallP50Ms < stallLo || c.stallP50Ms > stallHi)) return out('fail', expected, `${stallWords}: outside the window`);
  if (inside && stallJudged) return out('pass', expected, stallWords);
  const open: string[] = [];
  if (!inside) open.push(`${expected}: the interval straddles the range's ${lo < min ? 'lower' : 'upper'} edge`);
  else open.push(expected);
  if (!stallJudged) open.push(`stall length not judged on fewer than ${o.minAffectedForStall} affected lookups`);
  return out('inconclusive', ...open);
}

// ---- the stopping rule ----

/** A lookup is affected when it failed or took longer than the threshold (matrix.ts's affectedOf, per sample). */
export function isAffected(s: Pick<Sample, 'latencyUs' | 'result'>, thresholdMs: number): boolean {
  return s.result !== 'OK' || s.latencyUs > thresholdMs * 1000;
}

export interface SettlerOptions extends DecideOptions {
  /** A lookup is affected when it failed or took longer than this. */
  thresholdMs: number;
  /**
   * No verdict before this many ms on the probe's clock, nor before thresholdMs: lets the fault show (e.g. one
   * full stall period). The first lookups to complete are the fast ones; until then the share looks too low.
   */
  minMs: number;
  /** The verdict at this time, settled or not (today's duration). */
  capMs: number;
  /**
   * Confidence a verdict needs to stop before the cap (Haybittle–Peto): looking many times at a stricter
   * level keeps the chance of a wrong early stop near 1 − confidence. The verdict reported is at `confidence`.
   * While no lookup is affected, `confidence` itself suffices: "0 of n" only grows more certain with n, so
   * repeated looks add no chance of error (the clean stream's ≈ 3.8/tolerance lookups).
   */
  earlyConfidence: number;
  /** Look again when the number of lookups has grown by this share (geometric: O(log n) looks) … */
  lookGrowth: number;
  /** … or when this many ms have passed (a stalled thread changes the counts without a new sample). */
  lookEveryMs: number;
  /**
   * The probe's thread count, if known: a thread silent for longer than thresholdMs is inside an affected
   * lookup, and counts as one before it completes. Without it, in-flight stalls are invisible until they end.
   */
  threads?: number;
}

export const DEFAULT_SETTLER_OPTIONS = {
  ...DEFAULT_DECIDE_OPTIONS,
  earlyConfidence: 0.999,
  lookGrowth: 0.1,
  lookEveryMs: 250,
} satisfies Partial<SettlerOptions>;

export interface Settlement extends Decision {
  /** `settled`: decided before the cap; `cap`: the cap came first (the verdict may be inconclusive). */
  stoppedBy: 'settled' | 'cap';
  /** When the cell stopped, ms on the probe's clock. */
  atMs: number;
  /** Lookups counted when it stopped (the words' count; `classified` may hold more, measured after). */
  atSamples: number;
  /** The counts the decision was made on (in-flight affected lookups included). */
  classified: Classified;
  /** "settled after 3,100 lookups, 0.4 s" */
  stopped: string;
}

/**
 * Fed a cell's samples as they stream, says when its verdict is settled. Per sample O(1): counters, an
 * HdrHistogram for p99, the affected latencies in an array; the median and p99 are computed only at looks.
 */
export class Settler {
  readonly options: SettlerOptions;
  private n = 0;
  private k = 0;
  private maxUs = 0;
  private readonly hist = newHistogram();
  private readonly affectedUs: number[] = [];
  /** Per thread, when its last lookup ended (µs on the probe's clock): the next one started then. */
  private readonly lastEndUs: Float64Array;
  /**
   * When each completed lookup started, and each affected one (µs), for the census of lookups started long enough
   * ago. Kept only where a census can be used: a reproducing cell whose thread count is known.
   */
  private readonly keepsStarts: boolean;
  private readonly startsUs: number[] = [];
  private readonly affectedStartsUs: number[] = [];
  /** Completed lookups that came without a start time: then no census can be taken. */
  private unstarted = 0;
  private lookedAtSamples = -1;
  private lookedAtMs = -Infinity;
  private lookCount = 0;
  private settlement: Settlement | undefined;

  constructor(
    readonly expectation: Expectation,
    opts: Partial<SettlerOptions> & Pick<SettlerOptions, 'thresholdMs' | 'minMs' | 'capMs'>,
  ) {
    this.options = { ...DEFAULT_SETTLER_OPTIONS, ...opts };
    const o = this.options;
    if (!(o.minMs <= o.capMs)) throw new RangeError(`minMs (${o.minMs}) must not exceed capMs (${o.capMs})`);
    if (!(o.earlyConfidence >= o.confidence)) throw new RangeError(`earlyConfidence (${o.earlyConfidence}) must be at least confidence (${o.confidence})`);
    this.lastEndUs = new Float64Array(o.threads ?? 0);
    this.keepsStarts = expectation.expect === 'reproduces' && this.lastEndUs.length > 0;
  }

  add(s: Pick<Sample, 'latencyUs' | 'result'> & Partial<Pick<Sample, 'thread' | 'startUs'>>): void {
    this.n++;
    const us = Math.max(1, Math.round(s.latencyUs));
    this.hist.recordValue(us);
    if (s.latencyUs > this.maxUs) this.maxUs = s.latencyUs;
    const affected = isAffected(s, this.options.thresholdMs);
    if (affected) {
      this.k++;
      this.affectedUs.push(s.latencyUs);
    }
    if (this.keepsStarts) {
      if (s.startUs === undefined) this.unstarted++;
      else {
        this.startsUs.push(s.startUs);
        if (affected) this.affectedStartsUs.push(s.startUs);
      }
    }
    const t = s.thread;
    if (t !== undefined && t >= 0 && t < this.lastEndUs.length && s.startUs !== undefined) {
      this.lastEndUs[t] = Math.max(this.lastEndUs[t]!, s.startUs + s.latencyUs);
    }
  }

  addBatch(samples: Iterable<Pick<Sample, 'latencyUs' | 'result'> & Partial<Pick<Sample, 'thread' | 'startUs'>>>): void {
    for (const s of samples) this.add(s);
  }

  /** Completed lookups so far. */
  get samples(): number {
    return this.n;
  }

  /** Completed affected lookups so far. */
  get affected(): number {
    return this.k;
  }

  /** How many times settled() evaluated the counts (the rest of the calls returned at once). */
  get looks(): number {
    return this.lookCount;
  }

  /** Threads inside a lookup that has already lasted longer than the threshold at nowMs. */
  private pendingAffected(nowMs: number): number {
    const limitUs = nowMs * 1000 - this.options.thresholdMs * 1000;
    let pending = 0;
    for (const end of this.lastEndUs) if (end < limitUs) pending++;
    return pending;
  }

  /** The counts as of nowMs with every thread's lookup in flight counted affected: the most the share can be. */
  private inFlightAffected(nowMs: number): Classified {
    const c = this.classified(nowMs);
    const young = this.lastEndUs.length - this.pendingAffected(nowMs);
    return { ...c, samples: c.samples + young, affected: c.affected + young };
  }

  /**
   * Every lookup that started at least thresholdMs before nowMs, and only those: each has ended or has been in
   * flight long enough to count as affected, so none is still unknown. Unlike the completed lookups, which
   * leave out the stalls still in flight, this sample is not biased towards fast lookups. Undefined for a clean
   * cell, and without thread count or start times.
   */
  census(nowMs: number): Classified | undefined {
    if (!this.keepsStarts || this.unstarted > 0) return undefined;
    const cutoffUs = (nowMs - this.options.thresholdMs) * 1000;
    const before = (starts: readonly number[]) => starts.reduce((n, t) => n + (t < cutoffUs ? 1 : 0), 0);
    const pending = this.pendingAffected(nowMs);
    return { ...this.classified(), samples: before(this.startsUs) + pending, affected: before(this.affectedStartsUs) + pending };
  }

  /** The counts as of nowMs: completed lookups, plus in-flight ones already past the threshold when threads are known. */
  classified(nowMs?: number): Classified {
    const pending = nowMs === undefined ? 0 : this.pendingAffected(nowMs);
    const p99Us = this.n > 0 ? Math.min(this.hist.getValueAtPercentile(99), this.maxUs) : 0;
    return {
      samples: this.n + pending,
      affected: this.k + pending,
      p99Ms: Math.round(p99Us) / 1000,
      stallP50Ms: Math.round(medianUs(this.affectedUs)) / 1000,
      stallSamples: this.k,
    };
  }

  /**
   * The settlement once the verdict is settled (or the cap is reached), else undefined. Cheap between looks,
   * so the runner may call it after every batch. Once it returns a settlement it keeps returning it.
   */
  settled(nowMs: number): Settlement | undefined {
    if (this.settlement) return this.settlement;
    const o = this.options;
    if (nowMs < Math.max(o.minMs, o.thresholdMs) && nowMs < o.capMs) return undefined;
    if (nowMs >= o.capMs) return (this.settlement = this.settle('cap', nowMs));
    const due = this.n >= Math.max(this.lookedAtSamples + 1, Math.ceil(this.lookedAtSamples * (1 + o.lookGrowth))) || nowMs - this.lookedAtMs >= o.lookEveryMs;
    if (!due) return undefined;
    this.lookedAtSamples = this.n;
    this.lookedAtMs = nowMs;
    this.lookCount++;
    const c = this.classified(nowMs);
    if (c.samples === 0) return undefined;
    const early = decide(this.expectation, c, { ...o, confidence: c.affected === 0 ? o.confidence : o.earlyConfidence });
    if (early.verdict === 'inconclusive') return undefined;
    // A symptom is shown by lookups that completed with it (their errors, their length), not only by threads
    // still stuck: a reproducing cell stops early only once enough affected lookups have ended.
    if (this.expectation.expect === 'reproduces' && early.verdict !== 'not-reproduced' && this.k < o.minAffectedForStall) return undefined;
    // Stalls are the lookups still in flight, so the lookups completed so far undercount them (by up to one per
    // thread). A reproducing cell stops only if the verdict holds with every lookup in flight counted affected too;
    // a symptom that did not show, once it holds on the census (every lookup started a threshold ago, all known):
    // with hundreds of threads the worst case alone would keep a silent cell to its cap.
    if (this.expectation.expect === 'reproduces' && this.lastEndUs.length > 0) {
      const strict = { ...o, confidence: o.earlyConfidence };
      const worst = decide(this.expectation, this.inFlightAffected(nowMs), strict);
      const census = early.verdict === 'not-reproduced' && worst.verdict !== early.verdict ? this.census(nowMs) : undefined;
      if (worst.verdict !== early.verdict && (!census || decide(this.expectation, census, strict).verdict !== early.verdict)) return undefined;
    }
    return (this.settlement = this.settle('settled', nowMs, c));
  }

  /**
   * The verdict to record, on every lookup the probe completed (after the runner let in-flight lookups
   * finish), with the stop that ended the measurement. Falls back to a stop at nowMs if none happened.
   * `inFlight`: the probe was killed at nowMs, so lookups in flight then and already past the threshold
   * count as affected (they are the stalls the kill cut short).
   */
  finish(nowMs: number, inFlight = false): Settlement {
    const c = this.classified(inFlight ? nowMs : undefined);
    const stop = this.settlement ?? this.settle('cap', nowMs, c);
    const d = decide(this.expectation, c, this.options);
    // At the cap the words follow the final verdict, on every lookup measured (the ones in flight then completed since).
    const stopped = stop.stoppedBy === 'cap' ? `${d.verdict === 'inconclusive' ? 'undecided' : 'decided'} at the cap after ${fmtCount(c.samples)}, ${(stop.atMs / 1000).toFixed(1)} s` : stop.stopped;
    return { ...d, reason: `${d.reason}; ${stopped}`, stoppedBy: stop.stoppedBy, atMs: stop.atMs, atSamples: stop.stoppedBy === 'cap' ? c.samples : stop.atSamples, classified: c, stopped };
  }

  private settle(stoppedBy: Settlement['stoppedBy'], nowMs: number, c = this.classified(nowMs)): Settlement {
    const d = decide(this.expectation, c, this.options);
    const when = `${fmtCount(c.samples)}, ${(nowMs / 1000).toFixed(1)} s`;
    const stopped = stoppedBy === 'settled' ? `settled after ${when}` : d.verdict === 'inconclusive' ? `undecided at the cap after ${when}` : `decided at the cap after ${when}`;
    return { ...d, reason: `${d.reason}; ${stopped}`, stoppedBy, atMs: nowMs, atSamples: c.samples, classified: c, stopped };
  }
}

/** The lower median, as runner.ts's medianMs takes it, so both report the same stall. */
export function medianUs(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[(sorted.length - 1) >> 1]!;
}
