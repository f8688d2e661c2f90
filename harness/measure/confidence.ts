/**
 * Confidence intervals for a share of affected lookups (k of n): Wilson score and Clopper–Pearson (exact),
 * two-sided and one-sided, plus the formatting every report uses ("33 % (24–43 %)").
 *
 * Written out here rather than pulled in: the only candidate package (@stdlib/stats-base-dists-beta-quantile)
 * brings dozens of transitive @stdlib packages for one function. The numerics are textbook (references at
 * each function) and the tests pin them to published values.
 */

export const DEFAULT_CONFIDENCE = 0.95;

export type IntervalMethod = 'wilson' | 'clopper-pearson';

/** [lower, upper] bounds of a share, both in [0, 1]. */
export type Interval = readonly [lo: number, hi: number];

function checkCounts(k: number, n: number): void {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 0 || k < 0 || k > n) throw new RangeError(`need integers 0 ≤ k ≤ n, got k=${k}, n=${n}`);
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must lie in (0, 1), got ${confidence}`);
}

// ---- special functions ----

/**
 * Standard normal quantile Φ⁻¹(p), Wichura's AS 241 (PPND16), Applied Statistics 37 (1988) 477–484:
 * relative error about 1e-16, no iteration.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    return NaN;
  }
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r + 45921.953931549871457) * r +
          13731.693765509461125) *
          r +
          1971.5909503065514427) *
          r +
          133.14166789178437745) *
          r +
          3.387132872796366608)) /
      (((((((5226.495278852854561 * r + 28729.085735721942674) * r + 39307.89580009271061) * r + 21213.794301586595867) * r +
        5394.1960214247511077) *
        r +
        687.1870074920579083) *
        r +
        42.313330701600911252) *
        r +
        1)
    );
  }
  let r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  let x: number;
  if (r <= 5) {
    r -= 1.6;
    x =
      (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r + 1.27045825245236838258) * r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r + 0.14810397642748007459) * r +
        0.68976733498510000455) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    x =
      (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r + 0.026532189526576123093) * r +
        0.29656057182850489123) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r +
        0.0148753612908506148525) *
        r +
        0.13692988092273580531) *
        r +
        0.59983220655588793769) *
        r +
        1);
  }
  return q < 0 ? -x : x;
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7): relative error ~1e-15, enough for hypergeometric tails of millions of samples. */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of I_x(a, b) by the modified Lentz method (Numerical Recipes, 3rd ed., §6.4 betacf). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const TINY = 1e-300;
  const EPS = 1e-15;
  // Terms needed grow like √max(a, b); this bound is far beyond that for any count of lookups we measure.
  const MAX_TERMS = 100_000;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_TERMS; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < EPS) return h;
  }
  throw new Error(`incomplete beta: continued fraction did not converge (x=${x}, a=${a}, b=${b})`);
}

/** The regularized incomplete beta function I_x(a, b) = P(Beta(a, b) ≤ x), for a, b > 0. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incomplete beta needs a, b > 0, got a=${a}, b=${b}`);
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = a * Math.log(x) + b * Math.log1p(-x) - (lnGamma(a) + lnGamma(b) - lnGamma(a + b));
  // The fraction converges fast only left of the mean; right of it use I_x(a, b) = 1 − I_{1−x}(b, a).
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

/** The x in [0, 1] where I_x(a, b) = target, by bisection: slow next to Newton, but it cannot diverge. */
function betaQuantile(target: number, a: number, b: number): number {
  let lo = 0;
  let hi = 1;
  // 100 halvings pin x to 1e-30 absolute, far below any share we print.
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (regularizedBeta(mid, a, b) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

// ---- intervals ----

/**
 * Wilson score interval (Wilson 1927; Newcombe 1998, method 3): the default here. Near its nominal coverage
 * even for a handful of lookups, and never outside [0, 1].
 */
export function wilsonInterval(k: number, n: number, confidence = DEFAULT_CONFIDENCE): Interval {
  checkCounts(k, n);
  checkConfidence(confidence);
  return wilsonAt(k, n, normalQuantile(1 - (1 - confidence) / 2));
}

function wilsonAt(k: number, n: number, z: number): Interval {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  // At k = 0 or k = n the bound is exactly 0 or 1; rounding must not make it look otherwise.
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

/** One-sided Wilson upper bound: the share stays below it with the given confidence. */
export function wilsonUpperBound(k: number, n: number, confidence = DEFAULT_CONFIDENCE): number {
  checkCounts(k, n);
  checkConfidence(confidence);
  return wilsonAt(k, n, normalQuantile(confidence))[1];
}

/**
 * Clopper–Pearson "exact" interval (Clopper & Pearson 1934; Newcombe 1998, method 5): the quantiles of
 * Beta(k, n−k+1) and Beta(k+1, n−k). Coverage is never below nominal, so it is wider than Wilson.
 */
export function clopperPearsonInterval(k: number, n: number, confidence = DEFAULT_CONFIDENCE): Interval {
  checkCounts(k, n);
  checkConfidence(confidence);
  if (n === 0) return [0, 1];
  const tail = (1 - confidence) / 2;
  return [k === 0 ? 0 : k === n ? Math.pow(tail, 1 / n) : betaQuantile(tail, k, n - k + 1), clopperPearsonUpper(k, n, 1 - tail)];
}

function clopperPearsonUpper(k: number, n: number, level: number): number {
  if (k === n) return 1;
  // Closed form at k = 0: P(0 affected | p) = (1 − p)^n = 1 − level.
  if (k === 0) return 1 - Math.pow(1 - level, 1 / n);
  return betaQuantile(level, k + 1, n - k);
}

/**
 * One-sided exact upper bound: with k affected of n, the true share is below it with the given confidence.
 * At k = 0 it is 1 − (1 − confidence)^(1/n), about 3/n at 95 % (the rule of three).
 */
export function clopperPearsonUpperBound(k: number, n: number, confidence = DEFAULT_CONFIDENCE): number {
  checkCounts(k, n);
  checkConfidence(confidence);
  if (n === 0) return 1;
  return clopperPearsonUpper(k, n, confidence);
}

/** Hanley & Lippman-Hand (JAMA 1983): zero events in n gives a 95 % upper bound of about 3/n. */
export function ruleOfThree(n: number): number {
  return n > 0 ? Math.min(1, 3 / n) : 1;
}

/** The two-sided interval by the chosen method. */
export function proportionInterval(k: number, n: number, confidence = DEFAULT_CONFIDENCE, method: IntervalMethod = 'wilson'): Interval {
  return method === 'wilson' ? wilsonInterval(k, n, confidence) : clopperPearsonInterval(k, n, confidence);
}

// ---- words ----

/** A 0..1 share as a percentage with the digits its size needs: 33, 2.4, 0.13, 0.0038. */
export function fmtShare(share: number): string {
  if (!Number.isFinite(share)) return '–';
  const p = share * 100;
  if (p === 0) return '0';
  if (p >= 10) return p.toFixed(0);
  if (p >= 1) return p.toFixed(1);
  if (p >= 0.1) return p.toFixed(2);
  return p.toPrecision(2);
}

/** "33 % (24–43 %)": the seen share and its interval, as every report shows them. */
export function fmtShareWithInterval(share: number, [lo, hi]: Interval): string {
  return `${fmtShare(share)} % (${fmtShare(lo)}–${fmtShare(hi)} %)`;
}
