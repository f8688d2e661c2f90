import { describe, expect, it } from 'vitest';
import { planCells, prepareSuite } from './cells.ts';
import { cellQueue, expectedCellS, planLanes } from './runner.ts';

describe('planLanes: clusters side by side', () => {
  it('keeps one cluster under the run id when the provider holds one, or there is one cell', () => {
    expect(planLanes('3f9a1c', 21, 1)).toEqual([{ n: 1, id: '3f9a1c', label: '' }]);
    expect(planLanes('3f9a1c', 1, 2)).toEqual([{ n: 1, id: '3f9a1c', label: '' }]);
    expect(planLanes('3f9a1c', 21, 0)).toHaveLength(1);
  });

  it('names each further cluster after the run, so `vxchaos down <run>` finds them all', () => {
    expect(planLanes('3f9a1c', 21, 2)).toEqual([
      { n: 1, id: '3f9a1c.1', label: 'cluster 1' },
      { n: 2, id: '3f9a1c.2', label: 'cluster 2' },
    ]);
    expect(planLanes('3f9a1c', 3, 8).map((l) => l.id)).toEqual(['3f9a1c.1', '3f9a1c.2', '3f9a1c.3']);
  });
});

describe('cellQueue: the order lanes take cells in', () => {
  it('puts each client\'s no-fault cell first, then every other cell once, the longest first', () => {
    const cells = planCells(prepareSuite('dead-upstream').suite, ['musl', 'glibc'], { quick: true });
    const queue = cellQueue(cells);
    const key = (c: (typeof cells)[number]) => [c.client, c.fault.name, c.mitigation.name, c.name ?? ''];
    expect(queue.slice(0, 2).map(key)).toEqual([
      ['musl', 'none', 'none', ''],
      ['glibc', 'none', 'none', ''],
    ]);
    expect([...queue].sort((a, b) => a.index - b.index)).toEqual(cells);
    // The forwarder must learn before it is measured (its declared applyS): those cells start first, then the
    // reproducing ones (they wait whole stalls, up to the cap), then the clean ones; plan order among equals.
    expect(queue.slice(2, 4).map(key)).toEqual([
      ['musl', 'dead-upstream', 'forwarder-policy', ''],
      ['glibc', 'dead-upstream', 'forwarder-policy', ''],
    ]);
    expect(queue.slice(4, 6).map((c) => c.expectation.expect)).toEqual(['reproduces', 'reproduces']);
    const rest = queue.slice(2).map(expectedCellS);
    expect(rest).toEqual([...rest].sort((a, b) => b - a));
    const clean = queue.filter((c) => c.expectation.expect === 'clean' && c.mitigation.name !== 'forwarder-policy').slice(2).map((c) => c.index);
    expect(clean).toEqual([...clean].sort((a, b) => a - b));
  });

  it('expects a reproducing cell to wait out its cap, a clean one to stop at twice its threshold, plus what apply takes', () => {
    const cells = planCells(prepareSuite('dead-upstream').suite, ['glibc'], { quick: true });
    const of = (mitigation: string, expect: string) => cells.find((c) => c.mitigation.name === mitigation && c.expectation.expect === expect && !c.name)!;
    expect(expectedCellS(of('none', 'reproduces'))).toBe(6);
    expect(expectedCellS(of('drop-dead-upstream', 'clean'))).toBe(2);
    expect(expectedCellS(of('forwarder-policy', 'clean'))).toBe(9);
  });

  it('orders a run without a no-fault cell the same way, with nothing in front', () => {
    const cells = planCells(prepareSuite('conntrack-race').suite, ['glibc'], { quick: true }).filter((c) => c.fault.name !== 'none');
    const queue = cellQueue(cells);
    expect([...queue].sort((a, b) => a.index - b.index)).toEqual(cells);
    expect(queue[0]!.expectation.expect).toBe('reproduces');
    expect(queue.at(-1)!.expectation.expect).toBe('clean');
  });
});
