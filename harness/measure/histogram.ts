import * as hdr from 'hdr-histogram-js';

/** Latencies are recorded in µs, from 1 µs to 1 h, with 3 significant digits (HdrHistogram). */
export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: 64 });
}

export interface LatencySummary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  overThreshold: number;
  histogram: string;
}

const ms = (us: number) => Math.round(us) / 1000;

export function summarize(latenciesUs: readonly number[], thresholdMs: number): LatencySummary {
  const h = newHistogram();
  let over = 0;
  for (const us of latenciesUs) {
    h.recordValue(Math.max(1, Math.round(us)));
    if (us > thresholdMs * 1000) over++;
  }
  // A percentile is reported as its bucket's highest equivalent value: never above the exact maximum.
  const max = latenciesUs.reduce((a, b) => Math.max(a, b), 0);
  const at = (p: number) => ms(Math.min(h.getValueAtPercentile(p), max));
  const s: LatencySummary = {
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: ms(max),
    overThreshold: over,
    histogram: latenciesUs.length ? hdr.encodeIntoCompressedBase64(h) : '',
  };
  h.destroy();
  return s;
}

export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded);
}
