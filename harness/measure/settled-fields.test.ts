import { describe, expect, it } from 'vitest';
import { settledFields } from '../runner.ts';
import type { ExpectationSpec } from '../report/matrix.ts';
import { settlerOptionsFor } from './adaptive.ts';
import { Settler } from './settle.ts';

describe('what a settled cell records (runner.settledFields)', () => {
  it('the interval, the confidence, and the stop with the count the words gave; the lookups after it still judged', () => {
    const exp: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 100 };
    const settler = new Settler(exp, settlerOptionsFor(exp, { thresholdMs: 1000, threads: 4, durationS: 10 }));
    let t = 0;
    const add = (n: number) => {
      for (let i = 0; i < n; i++, t += 500) settler.add({ thread: i % 4, startUs: t, latencyUs: 2000, result: 'OK' });
    };
    add(5000);
    const stop = settler.settled(2500);
    expect(stop?.stoppedBy).toBe('settled');
    add(200); // printed while the probe was being stopped
    const s = settler.finish(2600, true);
    const f = settledFields(s, 0, 0.95);
    expect(f).toEqual({
      samples: 5200,
      affected: 0,
      affectedRate: 0,
      affectedInterval: s.interval,
      confidence: 0.95,
      stopped: { by: 'settled', afterSamples: 5000, afterMs: 2500 },
    });
    expect(s.reason).toMatch(/of 5,200 lookups.*; settled after 5,000 lookups, 2\.5 s$/);
  });
});
