import { describe, expect, it } from 'vitest';
import {
  clopperPearsonInterval,
  clopperPearsonUpperBound,
  fmtShare,
  fmtShareWithInterval,
  normalQuantile,
  proportionInterval,
  regularizedBeta,
  ruleOfThree,
  wilsonInterval,
  wilsonUpperBound,
} from './confidence.ts';

/** P(Bin(n, p) = x), by direct products: independent of the incomplete beta under test. */
function binomialPmf(x: number, n: number, p: number): number {
  let lnC = 0;
  for (let i = 1; i <= x; i++) lnC += Math.log(n - x + i) - Math.log(i);
  return Math.exp(lnC + x * Math.log(p) + (n - x) * Math.log1p(-p));
}

/** Exact coverage of an interval method at true share p: Σ over k of P(k) where the interval holds p. */
function coverage(method: (k: number, n: number) => readonly [number, number], n: number, p: number): number {
  let sum = 0;
  for (let k = 0; k <= n; k++) {
    const [lo, hi] = method(k, n);
    if (lo <= p && p <= hi) sum += binomialPmf(k, n, p);
  }
  return sum;
}

describe('normalQuantile (AS 241)', () => {
  it('gives the textbook critical values', () => {
    // Standard normal table values (e.g. Abramowitz & Stegun, Table 26.5), to the digits shown there and more.
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 14);
    expect(normalQuantile(0.95)).toBeCloseTo(1.6448536269514722, 14);
    expect(normalQuantile(0.995)).toBeCloseTo(2.5758293035489004, 14);
    expect(normalQuantile(0.9995)).toBeCloseTo(3.2905267314919255, 13);
    expect(normalQuantile(0.5)).toBe(0);
  });

  it('is odd around ½ and reaches far tails (reference values: SciPy 1.17 norm.ppf)', () => {
    // p whose 1 − p is exact in binary, so the check is of the function, not of rounding 1 − p.
    for (const p of [0.0009765625, 0.0625, 0.25, 0.375]) expect(normalQuantile(p)).toBeCloseTo(-normalQuantile(1 - p), 14);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 12);
    expect(normalQuantile(1e-300)).toBeCloseTo(-37.0470962993612, 10);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(normalQuantile(1.5)).toBeNaN();
  });
});

describe('regularizedBeta', () => {
  it('matches its closed forms and symmetry', () => {
    for (const x of [1e-6, 0.01, 0.3, 0.77, 0.999]) {
      expect(regularizedBeta(x, 1, 40)).toBeCloseTo(1 - Math.pow(1 - x, 40), 13);
      expect(regularizedBeta(x, 7, 1)).toBeCloseTo(Math.pow(x, 7), 13);
      expect(regularizedBeta(x, 3.5, 12) + regularizedBeta(1 - x, 12, 3.5)).toBeCloseTo(1, 13);
    }
    expect(regularizedBeta(0, 2, 3)).toBe(0);
    expect(regularizedBeta(1, 2, 3)).toBe(1);
    expect(() => regularizedBeta(0.5, 0, 3)).toThrow(RangeError);
  });

  it('is the binomial upper tail: P(Bin(n, p) ≥ k) = I_p(k, n − k + 1)', () => {
    for (const [n, p] of [
      [20, 0.3],
      [97, 0.33],
      [400, 0.01],
    ] as const) {
      let tail = 1;
      for (let k = 1; k <= n; k += Math.max(1, Math.floor(n / 15))) {
        tail = 0;
        for (let x = k; x <= n; x++) tail += binomialPmf(x, n, p);
        expect(regularizedBeta(p, k, n - k + 1)).toBeCloseTo(tail, 12);
      }
    }
  });

  it('stays accurate at the sizes a clean cell reaches (reference: SciPy 1.17 beta.cdf)', () => {
    expect(regularizedBeta(0.3, 2.5, 4)).toBeCloseTo(0.3521975859067672, 13);
    expect(regularizedBeta(0.999, 200, 3)).toBeCloseTo(0.9988334368468834, 12);
    expect(regularizedBeta(0.5, 50_000, 50_000)).toBeCloseTo(0.5, 9);
  });
});

describe('Wilson score interval', () => {
  it("reproduces Newcombe's published examples", () => {
    // Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion: comparison of seven
    // methods. Statistics in Medicine 17, 857–872, Table II, method 3 (score, no continuity correction).
    const cases: [number, number, number, number][] = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [k, n, lo, hi] of cases) {
      const [l, h] = wilsonInterval(k, n);
      expect(l).toBeCloseTo(lo, 4);
      expect(h).toBeCloseTo(hi, 4);
    }
  });

  it('gives the cells of issue 14 (reference values: SciPy 1.17, the same formula with norm.ppf)', () => {
    const cases: [number, number, number, number][] = [
      [0, 3000, 0, 0.0012788487253259625],
      [24, 97, 0.172274880528677, 0.3418138626029873],
      [32, 97, 0.24438091722640706, 0.4283727261071627],
      [16, 18, 0.6720023486982121, 0.9689804773543875],
      [16, 65, 0.15757986855897982, 0.36305783195877833],
    ];
    for (const [k, n, lo, hi] of cases) {
      const [l, h] = wilsonInterval(k, n);
      expect(l).toBeCloseTo(lo, 12);
      expect(h).toBeCloseTo(hi, 12);
    }
    // 0 of n has the closed form z²/(n + z²).
    const z = normalQuantile(0.975);
    expect(wilsonInterval(0, 3000)[1]).toBeCloseTo((z * z) / (3000 + z * z), 15);
  });

  it('is exactly 0 or 1 at the ends, [0, 1] without samples, and narrows with confidence', () => {
    expect(wilsonInterval(0, 50)[0]).toBe(0);
    expect(wilsonInterval(50, 50)[1]).toBe(1);
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
    const [lo95, hi95] = wilsonInterval(24, 97, 0.95);
    const [lo999, hi999] = wilsonInterval(24, 97, 0.999);
    expect(lo999).toBeLessThan(lo95);
    expect(hi999).toBeGreaterThan(hi95);
    expect(wilsonUpperBound(0, 3000)).toBeLessThan(wilsonInterval(0, 3000)[1]);
  });

  it('covers close to its nominal level (exact binomial sums, not simulation)', () => {
    for (const [n, p] of [
      [100, 0.33],
      [65, 0.25],
      [1000, 0.02],
    ] as const) {
      const cov = coverage((k, m) => wilsonInterval(k, m), n, p);
      expect(cov).toBeGreaterThan(0.92);
      expect(cov).toBeLessThan(0.98);
    }
  });

  it('refuses counts that are not counts', () => {
    expect(() => wilsonInterval(5, 4)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 4)).toThrow(RangeError);
    expect(() => wilsonInterval(1.5, 4)).toThrow(RangeError);
    expect(() => wilsonInterval(1, 4, 1)).toThrow(RangeError);
  });
});

describe('Clopper–Pearson interval', () => {
  it("reproduces Newcombe's published examples", () => {
    // Newcombe (1998), Table II, method 5 (exact, Clopper–Pearson).
    const cases: [number, number, number, number][] = [
      [81, 263, 0.2527, 0.3676],
      [15, 148, 0.0578, 0.1617],
      [0, 20, 0, 0.1684],
      [1, 29, 0.0009, 0.1776],
    ];
    for (const [k, n, lo, hi] of cases) {
      const [l, h] = clopperPearsonInterval(k, n);
      expect(l).toBeCloseTo(lo, 4);
      expect(h).toBeCloseTo(hi, 4);
    }
  });

  it('has the closed forms at 0 and n, and matches SciPy 1.17 beta.ppf inside', () => {
    for (const n of [1, 18, 97, 3000, 200_000]) {
      expect(clopperPearsonInterval(0, n)[1]).toBeCloseTo(1 - Math.pow(0.025, 1 / n), 14);
      expect(clopperPearsonInterval(n, n)[0]).toBeCloseTo(Math.pow(0.025, 1 / n), 14);
      expect(clopperPearsonUpperBound(0, n)).toBeCloseTo(1 - Math.pow(0.05, 1 / n), 14);
    }
    const [lo, hi] = clopperPearsonInterval(5, 200_000);
    expect(lo / 8.117480179060688e-6).toBeCloseTo(1, 8);
    expect(hi / 5.8340687798037695e-5).toBeCloseTo(1, 8);
    expect(clopperPearsonInterval(100_000, 200_000)[0]).toBeCloseTo(0.4978062069460849, 10);
    expect(clopperPearsonUpperBound(16, 65)).toBeCloseTo(0.34955109733782674, 10);
  });

  it('agrees with the rule of three for zero affected', () => {
    // Hanley & Lippman-Hand (1983): 0 of n gives a 95 % upper bound of about 3/n (−ln 0.05 = 2.996).
    for (const n of [300, 3000, 30_000]) {
      expect(clopperPearsonUpperBound(0, n) / ruleOfThree(n)).toBeGreaterThan(0.99);
      expect(clopperPearsonUpperBound(0, n) / ruleOfThree(n)).toBeLessThan(1.0);
    }
    expect(ruleOfThree(0)).toBe(1);
  });

  it('never covers less than its nominal level, and is wider than Wilson', () => {
    for (const [n, p] of [
      [18, 0.5],
      [65, 0.25],
      [200, 0.01],
    ] as const) {
      expect(coverage((k, m) => clopperPearsonInterval(k, m), n, p)).toBeGreaterThanOrEqual(0.95);
    }
    const [wl, wh] = wilsonInterval(16, 65);
    const [cl, ch] = clopperPearsonInterval(16, 65);
    expect(cl).toBeLessThan(wl);
    expect(ch).toBeGreaterThan(wh);
    expect(proportionInterval(16, 65, 0.95, 'clopper-pearson')).toEqual(clopperPearsonInterval(16, 65));
    expect(proportionInterval(16, 65)).toEqual(wilsonInterval(16, 65));
  });
});

describe('words', () => {
  it('prints a share with the digits its size needs', () => {
    expect(fmtShareWithInterval(32 / 97, wilsonInterval(32, 97))).toBe('33 % (24–43 %)');
    expect(fmtShareWithInterval(16 / 18, wilsonInterval(16, 18))).toBe('89 % (67–97 %)');
    expect(fmtShareWithInterval(0, wilsonInterval(0, 3000))).toBe('0 % (0–0.13 %)');
    expect(fmtShare(0.024)).toBe('2.4');
    expect(fmtShare(3.77e-5)).toBe('0.0038');
    expect(fmtShare(Number.NaN)).toBe('–');
  });
});
