import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderHtml } from './html.ts';
import { renderJUnit } from './junit.ts';
import { renderMarkdown } from './markdown.ts';
import type { Cell } from './matrix.ts';
import { renderTerminal } from './terminal.ts';
import { makeCell, makeMatrix } from './test-fixtures.ts';
import { loadMatrix } from './write.ts';

/** Every report says how sure a verdict is: the interval, and when and why the cell stopped (issue 14). */
function sureMatrix() {
  const settled: Cell = {
    ...makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', errors: 32, samples: 97 }, 2),
    verdict: 'pass',
    affectedRate: 32 / 97,
    affectedInterval: [0.245, 0.43],
    confidence: 0.95,
    stopped: { by: 'settled', afterSamples: 3100, afterMs: 400 },
  };
  const undecided: Cell = {
    ...makeCell({ client: 'glibc', fault: 'mac-churn', faultMode: 'stale-peers', errors: 16, samples: 18 }, 5),
    verdict: 'inconclusive',
    reason: '89 % (67–97 %) affected of 18 lookups, expected 90–100 %: the interval straddles the range\'s lower edge; undecided at the cap after 18 lookups, 6.0 s',
    failsRun: true,
    affectedRate: 16 / 18,
    affectedInterval: [0.672, 0.969],
    confidence: 0.95,
    stopped: { by: 'cap', afterSamples: 18, afterMs: 6000 },
  };
  return makeMatrix([settled, undecided], { failed: 1 });
}

describe('reports say how sure', () => {
  const m = sureMatrix();

  it('terminal: the share with its interval, and a stopped column', () => {
    const t = renderTerminal(m);
    expect(t).toContain('33 % (25–43 %)');
    expect(t).toMatch(/settled 0\.4 s +reproduces +pass/);
    expect(t).toMatch(/cap 6\.0 s +reproduces +inconclusive/);
    expect(t).toContain('glibc × mac-churn(stale-peers) × none: inconclusive — 89 % (67–97 %)');
  });

  it('Markdown: interval in the matrix and the cell table, why it stopped, inconclusive marked and explained', () => {
    const md = renderMarkdown(m);
    expect(md).toContain('✅ p99');
    expect(md).toContain('33 % (25–43 %) affected');
    expect(md).toContain('| settled after 3,100 lookups, 0.4 s |');
    expect(md).toContain('| stopped at the cap after 18 lookups, 6.0 s |');
    expect(md).toContain('❔ **glibc / mac-churn(stale-peers) / none** — inconclusive: 89 % (67–97 %)');
    expect(md).toContain('❔ inconclusive: the interval did not decide');
    expect(md).toContain('with its 95 % interval');
  });

  it('JUnit: an inconclusive cell is a failure of that type; measured lines carry the interval and the stop', () => {
    const x = renderJUnit(m);
    expect(x).toContain('failures="1"');
    expect(x).toContain('type="inconclusive"');
    expect(x).toContain('affected 33 % (25–43 %), p50');
    expect(x).toContain('; expected reproduces; settled after 3,100 lookups, 0.4 s\n');
  });

  it('HTML: interval in the heat map and the card, the stop, an inconclusive badge', () => {
    const h = renderHtml(m);
    expect(h).toContain('33 % (25–43 %) affected</span>');
    expect(h).toContain('<td>33 % (25–43 %) (95 % interval)</td>');
    expect(h).toContain('<td>settled after 3,100 lookups, 0.4 s</td>');
    expect(h).toContain('aria-label="inconclusive"');
  });

  it('older matrices without intervals still render their share alone', () => {
    const { affectedInterval: _i, stopped: _s, confidence: _c, ...old } = m.cells[0]!;
    const md = renderMarkdown(makeMatrix([old as Cell]));
    expect(md).toContain('33.0% affected');
    expect(md).not.toContain('settled after');
  });
});

describe('loadMatrix checks the interval', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses an interval that is not [lo, hi] within [0, 1]; accepts inconclusive', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vxc-sure-'));
    const m = sureMatrix();
    await writeFile(join(dir, 'matrix.json'), JSON.stringify(m));
    expect((await loadMatrix(dir)).cells[1]!.verdict).toBe('inconclusive');
    await writeFile(join(dir, 'matrix.json'), JSON.stringify({ ...m, cells: [{ ...m.cells[0], affectedInterval: [0.5, 0.2] }] }));
    await expect(loadMatrix(dir)).rejects.toThrow(/cells\[0\]\.affectedInterval: expected \[lo, hi\] with 0 ≤ lo ≤ hi ≤ 1, got \[0\.5,0\.2\]/);
  });
});
