import { describe, expect, it } from 'vitest';
import { planCells, prepareSuite } from './cells.ts';
import { cellQueue, planLanes } from './runner.ts';

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
  it('puts each client\'s no-fault cell first, then every other cell once, in plan order', () => {
    const cells = planCells(prepareSuite('dead-upstream').suite, ['musl', 'glibc'], { quick: true });
    const queue = cellQueue(cells);
    expect(queue.slice(0, 2).map((c) => [c.client, c.fault.name, c.mitigation.name, c.name ?? ''])).toEqual([
      ['musl', 'none', 'none', ''],
      ['glibc', 'none', 'none', ''],
    ]);
    expect([...queue].sort((a, b) => a.index - b.index)).toEqual(cells);
    const rest = queue.slice(2).map((c) => c.index);
    expect(rest).toEqual([...rest].sort((a, b) => a - b));
  });

  it('leaves a run without a no-fault cell in plan order', () => {
    const cells = planCells(prepareSuite('conntrack-race').suite, ['glibc'], { quick: true }).filter((c) => c.fault.name !== 'none');
    expect(cellQueue(cells)).toEqual(cells);
  });
});
