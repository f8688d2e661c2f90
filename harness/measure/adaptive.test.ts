import { describe, expect, it } from 'vitest';
import type { ExpectationSpec } from '../report/matrix.ts';
import { defaultMinMs, settlerOptionsFor } from './adaptive.ts';
import type { Sample } from './probe.ts';
import { Settler, type Settlement } from './settle.ts';

/** Deterministic [0, 1) numbers (mulberry32), so a stream is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A probe's stream as vxprobe prints it: `threads` threads, each starting its next lookup when the last ended,
 * for capMs; `latencyUs(rand)` draws one lookup. Samples in the order they complete.
 */
function stream(threads: number, capMs: number, latencyUs: (r: () => number) => number, seed = 1): Sample[] {
  const r = rng(seed);
  const out: Sample[] = [];
  for (let t = 0; t < threads; t++) {
    for (let start = 0; start < capMs * 1000; ) {
      const lat = Math.max(1, Math.round(latencyUs(r)));
      out.push({ thread: t, startUs: start, latencyUs: lat, result: 'OK' });
      start += lat;
    }
  }
  return out.sort((a, b) => a.startUs + a.latencyUs - (b.startUs + b.latencyUs));
}

/**
 * measureAdaptive's rule on a recorded stream: add each sample as it completes, look after each and every
 * 100 ms; a settled verdict kills the probe (in-flight lookups past the threshold count); else the probe runs
 * to its own end, where the lookups in flight at the cap complete.
 */
function replay(samples: readonly Sample[], settler: Settler): { settlement: Settlement; seen: number } {
  const capMs = settler.options.capMs;
  const settledAt = (nowMs: number) => settler.settled(nowMs)?.stoppedBy === 'settled';
  let i = 0;
  for (let tick = 0; tick <= capMs; tick += 100) {
    while (i < samples.length && (samples[i]!.startUs + samples[i]!.latencyUs) / 1000 <= tick) {
      const s = samples[i++]!;
      settler.add(s);
      const endMs = (s.startUs + s.latencyUs) / 1000;
      if (settledAt(endMs)) return { settlement: settler.finish(endMs, true), seen: i };
    }
    if (settledAt(tick)) return { settlement: settler.finish(tick, true), seen: i };
  }
  for (; i < samples.length; i++) settler.add(samples[i]!);
  const last = samples.at(-1);
  return { settlement: settler.finish(last ? (last.startUs + last.latencyUs) / 1000 : capMs), seen: i };
}

const musl = { thresholdMs: 1000, threads: 16 };
const fastUs = (r: () => number) => 500 + r() * 3000;

describe('settlerOptionsFor: the runner parameters of a cell', () => {
  const repro: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.15, 0.55], stallMs: [2000, 3500] };
  const clean: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 100 };

  it('a reproducing cell waits for the shortest stall its window accepts, every cell twice its threshold, the duration is the cap', () => {
    expect(defaultMinMs(repro, 1000)).toBe(2000);
    expect(defaultMinMs({ expect: 'reproduces', affectedRate: [0.01, 1], stallMs: [4000, 6500] }, 1000)).toBe(4000);
    expect(defaultMinMs({ expect: 'reproduces', affectedRate: [0.01, 1] }, 1000)).toBe(2000);
    expect(defaultMinMs(clean, 500)).toBe(1000);
    const o = settlerOptionsFor(repro, { thresholdMs: 1000, durationS: 6, threads: 16 });
    expect(o).toMatchObject({ thresholdMs: 1000, minMs: 2000, capMs: 6000, threads: 16, confidence: 0.95, minAffectedForStall: 6, minSamplesForP99: 299 });
  });

  it('the suite may set the minimum and the confidence; the minimum never passes the cap', () => {
    expect(settlerOptionsFor(clean, { thresholdMs: 1000, durationS: 6, threads: 8 }, { minS: 0.5 }).minMs).toBe(500);
    expect(settlerOptionsFor(repro, { thresholdMs: 1000, durationS: 2, threads: 8 }).minMs).toBe(2000);
    const strict = settlerOptionsFor(clean, { thresholdMs: 1000, durationS: 6, threads: 8 }, { confidence: 0.9999 });
    expect(strict.confidence).toBe(0.9999);
    expect(strict.earlyConfidence).toBeGreaterThanOrEqual(0.9999);
    expect(strict.minSamplesForP99).toBeGreaterThan(299);
    // The Settler accepts what the runner gives it.
    expect(() => new Settler(clean, strict)).not.toThrow();
  });
});

describe('stopping a cell on a recorded stream, with the runner parameters', () => {
  it('settles a clean stream as soon as its minimum has passed, on a fraction of the cap', () => {
    const exp: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 100 };
    const settler = new Settler(exp, settlerOptionsFor(exp, { ...musl, durationS: 12 }));
    const all = stream(16, 12_000, fastUs);
    const { settlement, seen } = replay(all, settler);
    expect(settlement.verdict).toBe('pass');
    expect(settlement.stoppedBy).toBe('settled');
    expect(settlement.atMs).toBeGreaterThanOrEqual(2000);
    expect(settlement.atMs).toBeLessThan(2500);
    expect(seen).toBeLessThan(all.length / 4);
    expect(settlement.stopped).toMatch(/^settled after [\d,]+ lookups, 2\.\d s$/);
  });

  it('waits for enough affected lookups on a reproducing stream: not before its stalls have ended, nor on fewer than 6 of them', () => {
    // musl behind a stale peer: a third of the lookups stall 2.5 s.
    const exp: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.15, 0.55], stallMs: [2000, 3500] };
    const settler = new Settler(exp, settlerOptionsFor(exp, { ...musl, durationS: 30 }));
    const all = stream(16, 30_000, (r) => (r() < 1 / 3 ? 2_500_000 + r() * 20_000 : fastUs(r)));
    const { settlement } = replay(all, settler);
    expect(settlement.verdict).toBe('pass');
    expect(settlement.stoppedBy).toBe('settled');
    expect(settlement.atMs).toBeGreaterThanOrEqual(2500);
    expect(settlement.atMs).toBeLessThan(30_000);
    expect(settlement.classified.stallSamples).toBeGreaterThanOrEqual(6);
    expect(settlement.classified.stallP50Ms).toBeGreaterThan(2400);
    expect(settlement.interval[0]).toBeGreaterThanOrEqual(0.15);
    expect(settlement.interval[1]).toBeLessThanOrEqual(0.55);
  });

  it('waits for affected lookups to complete, then counts the ones stalled in flight when it stops the probe', () => {
    // Every lookup to a dead server stalls 5 s: 16 threads are past the threshold at 0.5 s, yet none has ended.
    const exp: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.5, 1] };
    const dead = new Settler(exp, settlerOptionsFor(exp, { thresholdMs: 500, threads: 16, durationS: 10 }));
    const d = replay(stream(16, 10_000, () => 5_000_000), dead).settlement;
    expect(d.stoppedBy).toBe('settled');
    expect(d.atMs).toBeGreaterThanOrEqual(5000);
    expect(d.classified.stallSamples).toBeGreaterThanOrEqual(6);
    expect(d.verdict).toBe('pass');
    // Half the lookups stall 3 s: when enough have ended, others are still stuck past the threshold and count.
    const wide: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.2, 0.8] };
    const half = new Settler(wide, settlerOptionsFor(wide, { thresholdMs: 500, threads: 16, durationS: 30 }));
    const h = replay(stream(16, 30_000, (r) => (r() < 0.5 ? 3_000_000 : fastUs(r)), 2), half).settlement;
    expect(h.stoppedBy).toBe('settled');
    expect(h.classified.affected).toBeGreaterThan(h.classified.stallSamples!);
    expect(h.verdict).toBe('pass');
  });

  it('does not pass a clean cell early on rare long stalls that are still in flight', () => {
    // 0.5 % of the lookups stall 2 s: by count few, by time most of a thread's life; at any moment about half
    // of the 16 threads sit in a stall, most of them younger than the threshold.
    const exp: ExpectationSpec = { expect: 'clean', tolerance: 0.002, maxP99Ms: 250 };
    const settler = new Settler(exp, settlerOptionsFor(exp, { ...musl, durationS: 6 }));
    const { settlement } = replay(stream(16, 6000, (r) => (r() < 0.005 ? 2_000_000 : fastUs(r)), 5), settler);
    expect(settlement.verdict).not.toBe('pass');
  });

  it('reports inconclusive at the cap, with the interval, when the share sits on a range edge', () => {
    // 15 % affected against a range starting at 15 %: no number of lookups puts the interval inside. The fast
    // lookups complete first (about 6 % affected at 2 s): counting only them would stop early, not-reproduced.
    const exp: ExpectationSpec = { expect: 'reproduces', affectedRate: [0.15, 0.55] };
    const settler = new Settler(exp, settlerOptionsFor(exp, { ...musl, durationS: 6 }));
    const all = stream(16, 6000, (r) => (r() < 0.15 ? 1_200_000 : fastUs(r)), 7);
    const { settlement } = replay(all, settler);
    expect(settlement.stoppedBy).toBe('cap');
    expect(settlement.verdict).toBe('inconclusive');
    expect(settlement.interval[0]).toBeLessThan(0.15);
    expect(settlement.interval[1]).toBeGreaterThan(0.15);
    expect(settlement.reason).toMatch(/straddles the range's lower edge; undecided at the cap after/);
  });
});
