import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../config/suite.ts';
import { PROVIDERS } from './registry.ts';

const HARNESS = join(ROOT, 'harness');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * Shared code asks a Provider what it can do; it never names one. Tests and the benchmark measure the netns
 * provider itself and may name it; harness/providers/ (the providers and their registry) is where names live.
 */
describe('no provider name outside harness/providers/', () => {
  const names = PROVIDERS.map((p) => p.name);
  const shared = sources(HARNESS).filter((f) => {
    const rel = relative(HARNESS, f);
    return !rel.startsWith('providers/') && !rel.startsWith('bench/') && !rel.startsWith('e2e/') && !/\.test\.ts$|test-fixtures\.ts$|testing\.ts$/.test(rel);
  });

  it('finds the shared sources', () => {
    expect(shared.map((f) => relative(HARNESS, f))).toEqual(expect.arrayContaining(['runner.ts', 'cli.ts', 'cells.ts', 'report/matrix.ts']));
  });

  it.each(names)('"%s" appears in no shared source as a provider name, a comparison or an import', (name) => {
    const word = new RegExp(`['"\`]${name}['"\`]|provider(\\.name)?\\s*[!=]==?\\s*['"\`]${name}|providers/${name}/|${name[0]!.toUpperCase()}${name.slice(1)}Provider`);
    const hits = shared.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${relative(HARNESS, f)}:${i + 1}` }))
        // `ip netns …` is iproute2's command, not the provider's name.
        .filter(({ line }) => word.test(line.replace(/'ip', ('-n', '[^']+', )?'netns'/g, '')))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(hits).toEqual([]);
  });
});
