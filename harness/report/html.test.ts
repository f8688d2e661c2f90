import { describe, expect, it } from 'vitest';
import { alignCdfs, cdfOf, referenceOf, renderHtml, scriptJson } from './html.ts';
import { macChurnMatrix, makeCell, makeMatrix } from './test-fixtures.ts';

/** The chart data the page script reads, parsed back as the browser would. */
function chartData(html: string): { charts: { target: string; xRange: [number, number]; x: number[]; series: { label: string; y: number[] }[] }[] } {
  const m = /<script type="application\/json" id="vx-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]!);
}

describe('cdfOf', () => {
  it('puts a third of the lookups at 5 s when a third hit the stale replica', () => {
    const cell = makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', errors: 1667 });
    const cdf = cdfOf(cell);
    const below = (ms: number) => cdf.y[cdf.x.findLastIndex((x) => x < ms)]!;
    expect(below(1)).toBeCloseTo((5000 - 1667) / 5000, 3);
    expect(below(4999)).toBeCloseTo((5000 - 1667) / 5000, 3);
    expect(cdf.y.at(-1)).toBe(1);
    expect(cdf.x.at(-1)).toBeCloseTo(cell.maxMs, 6);
    // Monotone, and thinned: a few hundred points, not one per histogram bucket.
    expect(cdf.x.every((x, i) => i === 0 || x > cdf.x[i - 1]!)).toBe(true);
    expect(cdf.y.every((y, i) => i === 0 || y >= cdf.y[i - 1]!)).toBe(true);
    expect(cdf.x.length).toBeLessThan(600);
  });

  it('stays below 100 % when failed lookups carry no latency', () => {
    const cdf = cdfOf(makeCell({ client: 'glibc', errors: 500, recordErrors: false }));
    expect(cdf.recorded).toBe(4500);
    expect(cdf.y.at(-1)).toBeCloseTo(0.9, 12);
  });

  it('explains a missing histogram instead of drawing nothing silently', () => {
    expect(() => cdfOf({ ...makeCell({ client: 'musl' }), histogram: '' })).toThrow('no latency histogram');
  });
});

describe('alignCdfs', () => {
  it('evaluates each step function on the shared x axis, starting from 0', () => {
    const a = { x: [1, 3], y: [0.5, 1], recorded: 2, samples: 2 };
    const b = { x: [2], y: [1], recorded: 1, samples: 1 };
    const { x, ys } = alignCdfs([a, b]);
    expect(x.slice(1)).toEqual([1, 2, 3]);
    expect(x[0]).toBeLessThan(1);
    expect(ys).toEqual([
      [0, 0.5, 0.5, 1],
      [0, 0, 1, 1],
    ]);
  });
});

describe('referenceOf', () => {
  const m = macChurnMatrix();
  const [musl, muslChurn, muslResync] = m.cells;
  it('pairs a mitigated cell with the unmitigated cell of the same client × fault × mode', () => {
    expect(referenceOf(muslResync!, m.cells)).toEqual({ cell: muslChurn, role: 'unmitigated' });
  });
  it('pairs an unmitigated fault cell with the no-fault baseline of the same client', () => {
    expect(referenceOf(muslChurn!, m.cells)).toEqual({ cell: musl, role: 'no-fault baseline' });
    expect(referenceOf(musl!, m.cells)).toBeUndefined();
  });
});

describe('renderHtml', () => {
  const m = macChurnMatrix();
  const html = renderHtml(m);

  it('is self-contained: the chart library is inlined and nothing is loaded from elsewhere', () => {
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    expect(html).not.toMatch(/@import|url\(\s*['"]?https?:/i);
    expect(html).toContain('uPlot');
  });

  it('embeds one chart per cell, mitigated against unmitigated', () => {
    const { charts } = chartData(html);
    expect(charts).toHaveLength(m.cells.length);
    const resync = charts.find((c) => c.target === 'cell-3-cdf')!;
    expect(resync.series.map((s) => s.label)).toEqual(['this cell (neigh-resync)', 'unmitigated: musl / mac-churn(stale-peers) / none']);
    expect(resync.xRange[0]).toBeLessThanOrEqual(Math.min(...resync.x));
    expect(resync.xRange[1]).toBeGreaterThanOrEqual(Math.max(...resync.x));
    // The unmitigated curve reaches 100 % only at the 5 s stalls.
    const unmitigated = resync.series[1]!.y;
    expect(unmitigated[resync.x.findLastIndex((x) => x < 1000)]).toBeCloseTo(1 - 1667 / 5000, 3);
  });

  it('shows every cell in the heat map with its verdict and numbers from the matrix', () => {
    expect(html.match(/<td class="heat"/g)).toHaveLength(m.cells.length);
    const failed = m.cells.find((c) => c.verdict === 'fail')!;
    expect(html).toContain('p99 20,040 ms');
    expect(failed.p99Ms).toBeCloseTo(20040, -1);
    expect(html).toContain('6.1.0-test');
    expect(html).toContain('neigh.stale');
  });

  it('cannot be broken out of by text in the matrix', () => {
    const evil = '</script><script>alert(1)</script><!--';
    const c = { ...makeCell({ client: 'musl', mitigation: evil }), reason: evil, verdict: 'fail' as const };
    const out = renderHtml(makeMatrix([c], { description: evil, host: { hostname: evil } }));
    expect(out).not.toContain('<script>alert(1)');
    expect(out.match(/<\/script>/g)).toHaveLength(3); // data, uPlot, page script
    expect(chartData(out).charts[0]!.series[0]!.label).toBe(`this cell (${evil})`);
    expect(scriptJson({ a: '</script>\u2028' })).toBe('{"a":"\\u003c/script>\\u2028"}');
  });
});
