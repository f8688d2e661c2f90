import { summarize, type LatencySummary } from './histogram.ts';
import type { Sample } from './probe.ts';

/** One cell's lookups, classified once; every verdict and every reporter reads these numbers. */
export interface Classified extends LatencySummary {
  samples: number;
  errors: number;
  errorsByKind: Record<string, number>;
  /** Lookups that failed or took longer than the threshold, each counted once. */
  affected: number;
  /** Median latency of the affected lookups in ms (how long a stall lasts); 0 when none was affected. */
  stallP50Ms: number;
}

/** Median of latencies in µs, as ms (0 for none). */
export function medianMs(latenciesUs: readonly number[]): number {
  if (latenciesUs.length === 0) return 0;
  const sorted = [...latenciesUs].sort((a, b) => a - b);
  return Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!) / 1000;
}

/** A lookup is affected when it failed or took longer than the threshold (a slow failure counts once). */
export function isAffected(s: Pick<Sample, 'result' | 'latencyUs'>, thresholdMs: number): boolean {
  return s.result !== 'OK' || s.latencyUs > thresholdMs * 1000;
}

export function classify(samples: readonly Sample[], thresholdMs: number): Classified {
  const errorsByKind: Record<string, number> = {};
  let errors = 0;
  const affectedUs: number[] = [];
  for (const s of samples) {
    if (s.result !== 'OK') {
      errors++;
      errorsByKind[s.result] = (errorsByKind[s.result] ?? 0) + 1;
    }
    if (isAffected(s, thresholdMs)) affectedUs.push(s.latencyUs);
  }
  return {
    ...summarize(samples.map((s) => s.latencyUs), thresholdMs),
    samples: samples.length,
    errors,
    errorsByKind,
    affected: affectedUs.length,
    stallP50Ms: medianMs(affectedUs),
  };
}
