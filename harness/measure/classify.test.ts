import { describe, expect, it } from 'vitest';
import { classify, isAffected } from './classify.ts';

const s = (latencyMs: number, result = 'OK') => ({ thread: 0, startUs: 0, latencyUs: latencyMs * 1000, result });

describe('classify', () => {
  it('counts a failed or slow lookup once as affected, and the stall median of the affected only', () => {
    const c = classify([s(1), s(2), s(2500), s(5000, 'EAI_AGAIN'), s(3, 'EAI_NONAME')], 1000);
    expect(c.samples).toBe(5);
    expect(c.errors).toBe(2);
    expect(c.errorsByKind).toEqual({ EAI_AGAIN: 1, EAI_NONAME: 1 });
    expect(c.affected).toBe(3);
    expect(c.stallP50Ms).toBe(2500);
    expect(c.overThreshold).toBe(2);
  });
  it('an empty run has nothing affected', () => {
    expect(classify([], 1000)).toMatchObject({ samples: 0, affected: 0, stallP50Ms: 0 });
    expect(isAffected(s(999), 1000)).toBe(false);
  });
});
