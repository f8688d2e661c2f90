import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listSuites, loadSuiteFile, ROOT } from '../../config/suite.ts';

/** docs/kind.md says, cell by cell, what holds on kind: a suite or fault it does not mention is a gap. */
describe('docs/kind.md "What holds on kind, cell by cell"', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'kind.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## What holds on kind, cell by cell'), doc.indexOf('## What kind cannot show'));
  const rows = section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| suite') && !l.startsWith('| ---'));

  it.each(listSuites().map((s) => s.name))('covers every fault and mitigation of %s', (name) => {
    const { suite } = loadSuiteFile(name);
    const mine = rows.filter((r) => r.startsWith(`| ${name} |`));
    expect(mine.length, `no row for suite ${name}`).toBeGreaterThan(0);
    const text = mine.join('\n');
    for (const cell of suite.cells) {
      if (cell.fault !== 'none') expect(text, `${name}: fault ${cell.fault}`).toContain(cell.fault);
      if (cell.mitigation !== 'none' && cell.fault !== 'checksum-offload') expect(text, `${name}: mitigation ${cell.mitigation}`).toContain(cell.mitigation);
    }
  });

  it('says which cells are skipped and why', () => {
    const skipped = rows.filter((r) => r.includes('**skipped**'));
    expect(skipped.length).toBeGreaterThan(0);
    for (const r of skipped) expect(r).toMatch(/\*\*skipped\*\*: .*\(`ownsKubeProxyChains`\)/);
  });
});
