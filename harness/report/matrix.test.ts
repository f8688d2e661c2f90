import { describe, expect, it } from 'vitest';
import { medianMs } from '../measure/classify.ts';
import { failsRun, judge, type ExpectationSpec, type Measured } from './matrix.ts';

const base: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.15, 0.55] };
const clean: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 100 };
const m = (samples: number, affected: number, p99Ms: number, stallP50Ms = 0): Measured => ({ samples, affected, p99Ms, errorsByKind: affected ? { EAI_AGAIN: affected } : {}, stallP50Ms });

describe('verdicts', () => {
  it('reproduces: in range passes, none seen is not-reproduced, too many fails', () => {
    expect(judge(base, m(90, 30, 5000)).verdict).toBe('pass');
    expect(judge(base, m(90, 0, 1)).verdict).toBe('not-reproduced');
    const over = judge(base, m(90, 80, 5000));
    expect(over.verdict).toBe('fail');
    expect(over.reason).toContain('EAI_AGAIN×80');
  });

  it("clean: passes when the interval's upper bound is below the tolerance; fails above it or on a slow p99, with expected vs seen", () => {
    expect(judge(clean, m(5000, 0, 3)).verdict).toBe('pass');
    const bad = judge(clean, m(1000, 20, 3));
    expect(bad.verdict).toBe('fail');
    expect(bad.reason).toMatch(/^2\.0 % \(1\.3–3\.1 %\) affected of 1,000 lookups, tolerated ≤ 0\.20 %: above the tolerance/);
    expect(judge(clean, m(5000, 0, 250)).verdict).toBe('fail');
    expect(judge(clean, m(0, 0, 0)).verdict).toBe('fail');
  });

  it('says inconclusive, with the interval, when the lookups cannot tell (never a silent pass)', () => {
    // 2 of 1000 is 0.2 %, but its interval (0.05–0.73 %) reaches either side of the tolerance.
    const r = judge(clean, m(1000, 2, 3));
    expect(r.verdict).toBe('inconclusive');
    expect(r.interval[0]).toBeLessThan(0.002);
    expect(r.interval[1]).toBeGreaterThan(0.002);
    // 89 % of 18 lookups: the interval reaches below a 0.9 minimum.
    expect(judge({ expect: 'reproduces', affectedRate: [0.9, 1] }, m(18, 16, 5000)).verdict).toBe('inconclusive');
    expect(judge({ expect: 'reproduces', affectedRate: [0.5, 1] }, m(18, 16, 5000)).verdict).toBe('pass');
  });

  it('a higher confidence widens the interval: a verdict settled at 0.95 may be open at 0.999', () => {
    // 30 of 90: 24–44 % at 95 %, 20–51 % at 99.9 %.
    const spec: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.2, 0.5] };
    expect(judge(spec, m(90, 30, 5000), 0.95).verdict).toBe('pass');
    expect(judge(spec, m(90, 30, 5000), 0.999).verdict).toBe('inconclusive');
  });
});

describe('stall level (stallMs)', () => {
  const musl: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.01, 1], stallMs: [2000, 3500] };

  it('passes when the affected lookups stall as long as expected, and says how long', () => {
    const r = judge(musl, m(100, 30, 5000, 2504));
    expect(r.verdict).toBe('pass');
    expect(r.reason).toContain("affected lookups' median 2,504 ms (expected 2,000–3,500 ms)");
  });

  it('fails with expected and seen when the stall is of the other libc', () => {
    const r = judge(musl, m(100, 30, 5000, 5005));
    expect(r.verdict).toBe('fail');
    expect(r.reason).toMatch(/median 5,005 ms \(expected 2,000–3,500 ms\): outside the window/);
  });

  it('does not turn a missing symptom into a stall failure', () => {
    expect(judge(musl, m(1000, 0, 5000)).verdict).toBe('not-reproduced');
  });

  it('medianMs: the middle latency in ms, 0 for none', () => {
    expect(medianMs([])).toBe(0);
    expect(medianMs([5_000_000, 2_500_000, 2_600_000])).toBe(2600);
    expect(medianMs([1000, 3000])).toBe(1);
  });
});

describe('failsRun: the one place that decides the exit code', () => {
  it('fail and error always fail the run; skipped never does', () => {
    expect(failsRun('fail', 'native', false)).toBe(true);
    expect(failsRun('error', 'none', false)).toBe(true);
    expect(failsRun('skipped', 'emulated', true)).toBe(false);
    expect(failsRun('pass', 'emulated', true)).toBe(false);
  });
  it('inconclusive fails the run whatever the fault: an undecided measurement must not pass a gate', () => {
    expect(failsRun('inconclusive', 'native', false)).toBe(true);
    expect(failsRun('inconclusive', 'emulated', true)).toBe(true);
  });
  it('not-reproduced fails only for a harness-made fault where the provider guarantees the symptom', () => {
    expect(failsRun('not-reproduced', 'emulated', true)).toBe(true);
    expect(failsRun('not-reproduced', 'stale-peers', true)).toBe(true);
    expect(failsRun('not-reproduced', 'native', true)).toBe(false);
    expect(failsRun('not-reproduced', 'stale-peers', false)).toBe(false);
  });
});
