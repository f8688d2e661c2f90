/**
 * A cell's measurement that stops once its verdict is settled: the probe's samples stream into a Settler
 * (settle.ts), which the runner asks after every sample and every LOOK_TICK_MS; when it answers, the probe is
 * stopped and the verdict is recorded on everything it measured. The cell's durationS is the cap.
 */
import type { ExpectationSpec } from '../report/matrix.ts';
import type { ProbeTarget } from '../providers/provider.ts';
import { DEFAULT_CONFIDENCE } from './confidence.ts';
import { runProbe, type ProbeArgs, type ProbeOutput, type Sample } from './probe.ts';
import { DEFAULT_SETTLER_OPTIONS, Settler, minAffectedForStallAt, minSamplesForP99At, type Settlement, type SettlerOptions } from './settle.ts';

/** How often the runner looks without a new sample: a stalled thread turns affected with no line printed. */
const LOOK_TICK_MS = 100;
/** A sample that arrives this long after it ended was not streamed (its output came in one piece at the end). */
const LATE_MS = 2000;

export interface StopSettings {
  confidence?: number;
  /** Least seconds before a settled verdict may stop the cell (default: defaultMinMs). */
  minS?: number;
}

/**
 * The least time before a verdict, by default: a reproducing cell waits until the shortest stall its window
 * accepts could have completed (the lower end of its stall window; the settler also waits for enough completed
 * stalls, however long they take), and every cell for twice its threshold, so a stall that starts at once has
 * been seen as one (a lookup becomes affected only once it has lasted thresholdMs).
 */
export function defaultMinMs(exp: ExpectationSpec, thresholdMs: number): number {
  const stall = exp.expect === 'reproduces' && exp.stallMs ? exp.stallMs[0] : 0;
  return Math.max(2 * thresholdMs, stall);
}

/** The Settler's options for a cell: its threshold, threads and duration (the cap), the suite's confidence and minimum. */
export function settlerOptionsFor(
  exp: ExpectationSpec,
  wl: { thresholdMs: number; durationS: number; threads: number },
  stop: StopSettings = {},
): Partial<SettlerOptions> & Pick<SettlerOptions, 'thresholdMs' | 'minMs' | 'capMs'> {
  const confidence = stop.confidence ?? DEFAULT_CONFIDENCE;
  const capMs = wl.durationS * 1000;
  const minMs = Math.min(capMs, stop.minS !== undefined ? stop.minS * 1000 : defaultMinMs(exp, wl.thresholdMs));
  return {
    thresholdMs: wl.thresholdMs,
    minMs,
    capMs,
    threads: wl.threads,
    confidence,
    minAffectedForStall: minAffectedForStallAt(confidence),
    minSamplesForP99: minSamplesForP99At(confidence),
    earlyConfidence: Math.max(DEFAULT_SETTLER_OPTIONS.earlyConfidence, confidence),
  };
}

/**
 * Tracks the probe's clock from the runner's: the probe started a little after the runner's t0, so the
 * smallest (arrival − sample end) seen bounds the offset from above. Overestimating it makes in-flight lookups
 * look younger than they are: the settler then stops later, never on a stall that has not lasted its threshold.
 */
export class ProbeClock {
  private readonly t0 = performance.now();
  private offsetMs = 0;
  private seen = false;

  sample(s: Pick<Sample, 'startUs' | 'latencyUs'>): void {
    const lag = performance.now() - this.t0 - (s.startUs + s.latencyUs) / 1000;
    if (!this.seen || lag < this.offsetMs) this.offsetMs = Math.max(0, lag);
    this.seen = true;
  }

  nowMs(): number {
    return performance.now() - this.t0 - this.offsetMs;
  }
}

export interface AdaptiveResult {
  output: ProbeOutput;
  settlement: Settlement;
  /** Affected lookups still in flight when the probe was stopped, counted in the settlement. */
  inFlight: number;
}

/**
 * Runs the probe until the settler's verdict is settled, then stops it, or to its own end (the cap). A probe
 * killed early drops its in-flight lookups; those already past the threshold are counted as affected (finish
 * with inFlight), at the probe's own stop time (its `# stopped` trailer).
 */
export async function measureAdaptive(target: ProbeTarget, args: ProbeArgs, settler: Settler): Promise<AdaptiveResult> {
  const stop = new AbortController();
  const clock = new ProbeClock();
  const t0 = performance.now();
  // A target that cannot stream (a VM's agent returns the output at the end) delivers every sample long after
  // it ended: then nothing can stop early, and the whole run is judged at the cap.
  let live = true;
  // Before a first sample, a silent thread says nothing about stalls: an emulated CPU may not have printed yet.
  let seen = false;
  // At the cap the probe is left to end on its own (its -d is the cap): the stalls in flight then complete and
  // count, as they did before cells could stop early. Only a settled verdict kills it.
  const look = () => {
    if (seen && live && !stop.signal.aborted && settler.settled(clock.nowMs())?.stoppedBy === 'settled') stop.abort();
  };
  const tick = setInterval(look, LOOK_TICK_MS);
  let output: ProbeOutput;
  try {
    output = await runProbe(target, args, {
      signal: stop.signal,
      onSample: (s) => {
        if (performance.now() - t0 - (s.startUs + s.latencyUs) / 1000 > LATE_MS) live = false;
        seen = true;
        clock.sample(s);
        settler.add(s);
        look();
      },
    });
  } finally {
    clearInterval(tick);
  }
  const killed = output.stopped !== undefined;
  const endMs = output.wallUs / 1000;
  const settlement = settler.finish(endMs, killed);
  return { output, settlement, inFlight: settlement.classified.samples - settler.samples };
}
