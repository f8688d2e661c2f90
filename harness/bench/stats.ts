/** Exact nearest-rank percentile (no histogram buckets: the bench compares two sets of the same lookups). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export interface LinearFit {
  /** Growth per unit of x (ms per node). */
  slope: number;
  intercept: number;
  /** Coefficient of determination: 1 is a perfect line. */
  r2: number;
  points: number;
}

/** Ordinary least squares y = intercept + slope·x. */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return { slope: Number.NaN, intercept: Number.NaN, r2: Number.NaN, points: n };
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i]!;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return { slope: Number.NaN, intercept: Number.NaN, r2: Number.NaN, points: n };
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) ssRes += (ys[i]! - (intercept + slope * xs[i]!)) ** 2;
  return { slope, intercept, r2: syy === 0 ? 1 : 1 - ssRes / syy, points: n };
}

/** `dnsperf` statistics block. */
export interface DnsperfStats {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  avgLatencyMs: number;
  runTimeS: number;
}

export function parseDnsperf(text: string): DnsperfStats | undefined {
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const qps = num(/Queries per second:\s+([\d.]+)/);
  const sent = num(/Queries sent:\s+(\d+)/);
  if (qps === undefined || sent === undefined) return undefined;
  return {
    sent,
    completed: num(/Queries completed:\s+(\d+)/) ?? 0,
    lost: num(/Queries lost:\s+(\d+)/) ?? 0,
    qps,
    avgLatencyMs: (num(/Average Latency \(s\):\s+([\d.]+)/) ?? Number.NaN) * 1000,
    runTimeS: num(/Run time \(s\):\s+([\d.]+)/) ?? Number.NaN,
  };
}
