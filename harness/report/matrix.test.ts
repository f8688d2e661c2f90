import { describe, expect, it } from 'vitest';
import { medianMs } from '../runner.ts';
import { judge, type ExpectationSpec, type Measured } from './matrix.ts';

const base: ExpectationSpec = { expect: 'reproduces', minAffectedRate: 0.15, maxAffectedRate: 0.55, maxCleanAffectedRate: 0, maxCleanP99Ms: 100 };
const m = (samples: number, errors: number, p99Ms: number): Measured => ({ samples, errors, overThreshold: errors, p99Ms, errorsByKind: errors ? { EAI_AGAIN: errors } : {} });

describe('verdicts', () => {
  it('reproduces: in range passes, none seen is not-reproduced, too many fails', () => {
    expect(judge(base, m(90, 30, 5000), 30).verdict).toBe('pass');
    expect(judge(base, m(90, 0, 1), 0).verdict).toBe('not-reproduced');
    const over = judge(base, m(90, 80, 5000), 80);
    expect(over.verdict).toBe('fail');
    expect(over.reason).toContain('EAI_AGAIN×80');
  });

  it('clean: any affected lookup or a slow p99 fails, with expected vs seen', () => {
    const clean = { ...base, expect: 'clean' as const };
    expect(judge(clean, m(1000, 0, 3), 0).verdict).toBe('pass');
    const bad = judge(clean, m(1000, 2, 3), 2);
    expect(bad.verdict).toBe('fail');
    expect(bad.reason).toMatch(/expected clean .* saw 2\/1000 affected/);
    expect(judge(clean, m(1000, 0, 250), 0).verdict).toBe('fail');
    expect(judge(clean, m(0, 0, 0), 0).verdict).toBe('fail');
  });
});

describe('stall level (stallMs)', () => {
  const musl: ExpectationSpec = { ...base, minAffectedRate: 0.01, maxAffectedRate: 1, stallMs: [2000, 3500] };
  const withStall = (stallP50Ms: number): Measured => ({ ...m(100, 0, 5000), overThreshold: 30, stallP50Ms });

  it('passes when the affected lookups stall as long as expected, and says how long', () => {
    const r = judge(musl, withStall(2504), 30);
    expect(r.verdict).toBe('pass');
    expect(r.reason).toContain("affected lookups' median 2504 ms");
  });

  it('fails with expected and seen when the stall is of the other libc', () => {
    const r = judge(musl, withStall(5005), 30);
    expect(r.verdict).toBe('fail');
    expect(r.reason).toMatch(/expected stalls of 2000–3500 ms .* saw .*median 5005 ms/);
  });

  it('does not turn a missing symptom into a stall failure', () => {
    expect(judge(musl, withStall(0), 0).verdict).toBe('not-reproduced');
  });

  it('medianMs: the middle latency in ms, 0 for none', () => {
    expect(medianMs([])).toBe(0);
    expect(medianMs([5_000_000, 2_500_000, 2_600_000])).toBe(2600);
    expect(medianMs([1000, 3000])).toBe(1);
  });
});
