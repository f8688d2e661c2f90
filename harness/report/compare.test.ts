import { describe, expect, it } from 'vitest';
import {
  compareMatrices,
  fisherGreater,
  holmSignificant,
  hypergeometricUpperTail,
  lnGamma,
  renderCompareMarkdown,
} from './compare.ts';
import type { Cell } from './matrix.ts';
import { macChurnMatrix, makeCell, makeMatrix } from './test-fixtures.ts';

describe('statistics', () => {
  it('lnGamma matches log-factorials', () => {
    let lnFact = 0;
    for (let n = 1; n <= 170; n++) {
      lnFact += Math.log(n);
      expect(lnGamma(n + 1)).toBeCloseTo(lnFact, 9);
    }
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
  });

  it("fisherGreater reproduces textbook values", () => {
    // Lady tasting tea: 3 of 4 right vs 1 of 4; P(X ≥ 3) = (16 + 1) / 70.
    expect(fisherGreater(3, 4, 1, 4)).toBeCloseTo(17 / 70, 12);
    // One extra failure in 5000 is a coin flip, not evidence.
    expect(fisherGreater(1, 5000, 0, 5000)).toBeCloseTo(0.5, 9);
    expect(fisherGreater(0, 5000, 1, 5000)).toBe(1);
    // 30% vs 0% over 5000 lookups is beyond doubt and must not underflow to garbage.
    const p = fisherGreater(1500, 5000, 0, 5000);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(1e-300);
  });

  it('hypergeometric tails are probabilities that add up', () => {
    const [N, K, n] = [300, 120, 100];
    let prev = 1;
    for (let k = 0; k <= n + 1; k++) {
      const t = hypergeometricUpperTail(k, N, K, n);
      expect(t).toBeLessThanOrEqual(prev + 1e-12);
      expect(t).toBeGreaterThanOrEqual(0);
      prev = t;
    }
    // P(X ≥ k) + P(X ≤ k−1) = 1, the second computed through the swapped table.
    for (const k of [10, 40, 60]) {
      const lower = hypergeometricUpperTail(n - k + 1, N, N - K, n);
      expect(hypergeometricUpperTail(k, N, K, n) + lower).toBeCloseTo(1, 10);
    }
  });

  it('is calibrated: two runs with the same 5 % fault rate rarely look different at α = 0.01', () => {
    // Seeded, so this is a fixed check of the false-alarm rate, not a flaky one.
    let seed = 42;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const draw = (n: number, p: number) => Array.from({ length: n }).reduce<number>((k) => k + (random() < p ? 1 : 0), 0);
    const trials = 300;
    let alarms = 0;
    for (let t = 0; t < trials; t++) if (fisherGreater(draw(5000, 0.05), 5000, draw(5000, 0.05), 5000) <= 0.01) alarms++;
    expect(alarms / trials).toBeLessThanOrEqual(0.02);
    // … while a real shift from 5 % to 7 % is caught nearly every time.
    let caught = 0;
    for (let t = 0; t < 50; t++) if (fisherGreater(draw(5000, 0.07), 5000, draw(5000, 0.05), 5000) <= 0.01) caught++;
    expect(caught).toBeGreaterThanOrEqual(45);
  });

  it('Holm–Bonferroni rejects in order and stops at the first keeper', () => {
    expect(holmSignificant([0.001, 0.04, 0.002], 0.01)).toEqual([true, false, true]);
    expect(holmSignificant([0.004, 0.004, 0.004], 0.01)).toEqual([false, false, false]);
  });
});

/** The same cell measured again: same shape, a different random draw of healthy latencies. */
function remeasure(m: ReturnType<typeof macChurnMatrix>, seedOffset: number) {
  return makeMatrix(m.cells.map((c, i) => ({ ...c, ...pick(makeCell(shapeOf(c), 100 + i + seedOffset)) })), { runId: 'again' });
}
function shapeOf(c: Cell) {
  return { client: c.client, fault: c.fault, faultMode: c.faultMode, mitigation: c.mitigation, errors: c.errors, slowMs: c.maxMs > 10_000 ? 20_000 : 5000 };
}
function pick(c: Cell) {
  const { p50Ms, p90Ms, p99Ms, p999Ms, maxMs, histogram } = c;
  return { p50Ms, p90Ms, p99Ms, p999Ms, maxMs, histogram };
}

describe('compareMatrices', () => {
  const base = makeMatrix([
    makeCell({ client: 'musl', fastMs: [0.3, 1.0] }, 1),
    makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync', fastMs: [0.3, 1.0] }, 2),
  ]);

  it('passes an identical matrix', () => {
    const r = compareMatrices(base, structuredClone(base));
    expect(r.counts).toEqual({ regressed: 0, improved: 0, new: 0, missing: 0, unchanged: 2 });
  });

  it('passes a re-measurement of the mac-churn story (same behaviour, new noise)', () => {
    const m = macChurnMatrix();
    const r = compareMatrices(m, remeasure(m, 7));
    expect(r.counts.regressed).toBe(0);
    expect(r.counts.improved).toBe(0);
  });

  it('flags a deliberately degraded cell: errors 0 → 30 %, p99 1 → 2500 ms', () => {
    const bad = makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync', errors: 1500, slowMs: 2500 }, 2);
    expect(base.cells[1]!.p99Ms).toBeCloseTo(1, 1);
    expect(bad.errorRate).toBe(0.3);
    expect(bad.p99Ms).toBeGreaterThanOrEqual(2500);
    const r = compareMatrices(base, makeMatrix([base.cells[0]!, bad]));
    expect(r.counts.regressed).toBe(1);
    const cell = r.cells[0]!;
    expect(cell.name).toBe('musl / mac-churn(stale-peers) / neigh-resync');
    expect(cell.change).toBe('regressed');
    expect(cell.affected!.pWorse).toBeLessThan(1e-100);
    expect(cell.why.join('; ')).toMatch(/^affected 0 % \(0–0\.077 %\) → 30 % \(29–31 %\) \(p < 1e-300\); p99 (0\.99|1\.00) → 2,50\d ms$/);
    // Both runs carry the interval the verdicts use (Wilson 95 %).
    expect(cell.affected!.baseline.interval[1]).toBeCloseTo(3.8415 / (5000 + 3.8415), 6);
    expect(cell.affected!.current.interval[0]).toBeCloseTo(0.2875, 3);
    expect(cell.affected!.current.interval[1]).toBeCloseTo(0.3129, 3);
    // And the reverse direction is an improvement, not a regression.
    const back = compareMatrices(makeMatrix([base.cells[0]!, bad]), base);
    expect(back.counts).toMatchObject({ regressed: 0, improved: 1 });
  });

  it('does not flag a tiny noise change: errors 0/5000 → 1/5000, p99 0.8 → 0.9 ms', () => {
    const before = makeMatrix([makeCell({ client: 'glibc', fastMs: [0.3, 0.8] }, 3)]);
    const after = makeMatrix([makeCell({ client: 'glibc', fastMs: [0.3, 0.9], errors: 1 }, 4)]);
    expect(before.cells[0]!.p99Ms).toBeCloseTo(0.8, 1);
    expect(after.cells[0]!.p99Ms).toBeCloseTo(0.9, 1);
    const r = compareMatrices(before, after);
    expect(r.cells[0]!.change).toBe('unchanged');
    expect(r.cells[0]!.affected!.pWorse).toBeCloseTo(0.5, 6);
  });

  it('shows intervals without letting them decide: Fisher + Holm stays the test', () => {
    // 33 % of 97 → 45 % of 97: the intervals overlap (24–43 % vs 36–55 %), and Fisher agrees it is noise at α = 0.01.
    const at = (affected: number): Cell => ({ ...base.cells[0]!, samples: 97, errors: affected, overThreshold: 0, affectedRate: affected / 97 });
    const noisy = compareMatrices(makeMatrix([at(32)]), makeMatrix([at(44)])).cells[0]!;
    expect(noisy.change).toBe('unchanged');
    expect(noisy.affected!.current.interval[0]).toBeLessThan(noisy.affected!.baseline.interval[1]);
    // 2 % → 4 % of 5,000 each: the 95 % intervals nearly touch, yet the test finds the shift (p ≈ 1e-8).
    const big = (affected: number): Cell => ({ ...base.cells[0]!, samples: 5000, errors: affected, overThreshold: 0, affectedRate: affected / 5000 });
    const shifted = compareMatrices(makeMatrix([big(100)]), makeMatrix([big(200)])).cells[0]!;
    expect(shifted.change).toBe('regressed');
    expect(shifted.affected!.pWorse).toBeLessThan(1e-6);
    // The shown level follows the option; the verdict of the comparison does not.
    const wide = compareMatrices(makeMatrix([big(100)]), makeMatrix([big(200)]), { confidence: 0.999 }).cells[0]!;
    expect(wide.change).toBe('regressed');
    expect(wide.affected!.current.interval[0]).toBeLessThan(shifted.affected!.current.interval[0]);
  });

  it('prints a verdict it has no mark for (inconclusive) instead of dropping it', () => {
    const inconclusive = { ...base.cells[1]!, verdict: 'inconclusive' as Cell['verdict'] };
    const md = renderCompareMarkdown(compareMatrices(base, makeMatrix([base.cells[0]!, inconclusive])));
    expect(md).toMatch(/✅ pass → ❔ inconclusive/);
  });

  it('needs both p99 margins: relative alone or absolute alone is noise', () => {
    const at = (p99Ms: number): Cell => ({ ...base.cells[0]!, p99Ms });
    const change = (a: number, b: number) => compareMatrices(makeMatrix([at(a)]), makeMatrix([at(b)])).cells[0]!.change;
    expect(change(1, 4)).toBe('unchanged'); // +300 % but only 3 ms
    expect(change(100, 140)).toBe('unchanged'); // +40 ms but only 40 %
    expect(change(100, 200)).toBe('regressed');
    expect(change(200, 100)).toBe('improved');
    expect(compareMatrices(makeMatrix([at(1)]), makeMatrix([at(4)]), { p99AbsoluteMarginMs: 2 }).cells[0]!.change).toBe('regressed');
  });

  it('matches on the full identity and reports new and missing cells', () => {
    const moved = { ...base.cells[1]!, target: 'other.default.svc.cluster.local' };
    const r = compareMatrices(base, makeMatrix([base.cells[0]!, moved]));
    expect(r.cells.map((c) => [c.change, c.name])).toEqual([
      ['new', 'musl / mac-churn(stale-peers) / neigh-resync [resolve other.default.svc.cluster.local]'],
      ['missing', 'musl / mac-churn(stale-peers) / neigh-resync [resolve web.default.svc.cluster.local]'],
      ['unchanged', 'musl / none / none [resolve web.default.svc.cluster.local]'],
    ]);
  });

  it('compares p99 only between runs on as many clusters side by side, and says so', () => {
    const at = (p99Ms: number): Cell => ({ ...base.cells[0]!, p99Ms });
    // Serial 12 ms → 30 ms beside a second cluster (as measured on conntrack-race): not a regression of the cell.
    const r = compareMatrices(makeMatrix([at(12)]), makeMatrix([at(30)], { clusters: 2 }));
    expect(r.cells[0]!.change).toBe('unchanged');
    expect(r.notes).toEqual(['measured on one cluster → 2 clusters side by side: p99 not compared (clusters side by side share the CPUs; run both with or both without --serial)']);
    // The affected share still is compared: it does not depend on the CPUs' sharing.
    const failing = { ...at(30), errors: 1500, affected: 1500, errorRate: 0.3, affectedRate: 0.3 };
    expect(compareMatrices(makeMatrix([at(12)]), makeMatrix([failing], { clusters: 2 })).cells[0]!.change).toBe('regressed');
    // Both side by side: p99 is compared again.
    expect(compareMatrices(makeMatrix([at(12)], { clusters: 2 }), makeMatrix([at(30)], { clusters: 2 })).cells[0]!.change).toBe('regressed');
  });

  it('notes run-level differences such as the kernel', () => {
    const r = compareMatrices(base, makeMatrix(base.cells, { kernel: '6.8.0' }));
    expect(r.notes).toEqual(['kernel differs: 6.1.0-test → 6.8.0']);
  });
});

describe('renderCompareMarkdown', () => {
  it('leads with regressions and states the rule it applied', () => {
    const m = macChurnMatrix();
    const worse = structuredClone(m);
    const musl = worse.cells[2]!;
    Object.assign(musl, makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync', errors: 1500, slowMs: 2500 }, 9));
    const md = renderCompareMarkdown(compareMatrices(m, worse));
    expect(md.split('\n')[0]).toBe('## vxchaos compare · flannel-arp — 🔴 1 cell regressed');
    expect(md).toContain('one-sided Fisher exact test at α = 0.01 (Holm-corrected over 6 matched cells)');
    expect(md).toContain('worse by more than 50.0% and more than 5 ms');
    expect(md).toContain('Each share shows its Wilson 95 % interval, as the verdicts do; the test decides, not whether intervals overlap.');
    const firstRow = md.split('\n').find((l) => l.startsWith('| musl'))!;
    expect(firstRow).toContain('| musl / mac-churn(stale-peers) / neigh-resync | 🔴 regressed | 0/5,000: 0 % (0–0.077 %) → 1,500/5,000: 30 % (29–31 %) |');
    expect(firstRow).toContain('✅ pass → ❌ fail');
    expect(md).toContain('<details><summary>5 unchanged cells</summary>');
  });
});
