import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VxError } from '../errors.ts';
import { compareCommand, reportCommand } from './commands.ts';
import { loadMatrix, regenerateReports, writeReports } from './write.ts';
import { macChurnMatrix, makeCell } from './test-fixtures.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vx-report-'));
  vi.stubEnv('GITHUB_STEP_SUMMARY', '');
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<VxError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(VxError);
  return e as VxError;
}

describe('writeReports / loadMatrix', () => {
  it('writes the four files and appends the summary in CI', async () => {
    const summary = join(dir, 'summary.md');
    vi.stubEnv('GITHUB_STEP_SUMMARY', summary);
    const m = macChurnMatrix();
    const run = join(dir, 'reports', m.runId);
    const paths = await writeReports(m, run);
    expect(paths).toEqual(['matrix.json', 'matrix.md', 'junit.xml', 'index.html'].map((f) => join(run, f)));
    for (const p of paths) expect((await stat(p)).size).toBeGreaterThan(0);
    expect(await readFile(summary, 'utf8')).toBe(await readFile(join(run, 'matrix.md'), 'utf8'));
    expect(await readFile(join(run, 'matrix.json'), 'utf8')).toMatch(/^\{\n {2}"schemaVersion": 1,/);
  });

  it('loads what it wrote, from the run dir or the file', async () => {
    const m = macChurnMatrix();
    await writeReports(m, dir);
    expect(await loadMatrix(dir)).toEqual(m);
    expect(await loadMatrix(join(dir, 'matrix.json'))).toEqual(m);
  });

  it('regenerates the rendered reports from matrix.json without touching it', async () => {
    const m = macChurnMatrix();
    await writeReports(m, dir);
    const json = await readFile(join(dir, 'matrix.json'), 'utf8');
    await rm(join(dir, 'index.html'));
    await writeFile(join(dir, 'matrix.md'), 'stale');
    const lines: string[] = [];
    const paths = await reportCommand(dir, (l) => lines.push(l));
    expect(paths).toEqual(['matrix.md', 'junit.xml', 'index.html'].map((f) => join(dir, f)));
    expect(lines).toEqual(paths.map((p) => `wrote ${p}`));
    expect(await readFile(join(dir, 'matrix.md'), 'utf8')).toContain('vxchaos · flannel-arp');
    expect((await stat(join(dir, 'index.html'))).size).toBeGreaterThan(50_000);
    expect(await readFile(join(dir, 'matrix.json'), 'utf8')).toBe(json);
  });

  it('rejects another schemaVersion with a clear message', async () => {
    await writeFile(join(dir, 'matrix.json'), JSON.stringify({ ...macChurnMatrix(), schemaVersion: 2 }));
    const e = await rejection(loadMatrix(dir));
    expect(e.code).toBe('E_MATRIX_SCHEMA');
    expect(e.message).toBe(`${join(dir, 'matrix.json')}: schemaVersion 2 is not supported (this vxchaos reads 1): the file was written by a newer vxchaos; upgrade to read it`);
    await writeFile(join(dir, 'matrix.json'), '{"cells": []}');
    expect((await rejection(loadMatrix(dir))).message).toContain('has no numeric schemaVersion; is it a vxchaos matrix?');
  });

  it('lists every contract problem at once', async () => {
    const m = macChurnMatrix();
    const broken = { ...m, kernel: 42, cells: [{ ...m.cells[0], p99Ms: '1', verdict: 'meh' }, 'x'] };
    await writeFile(join(dir, 'matrix.json'), JSON.stringify(broken));
    const e = await rejection(loadMatrix(dir));
    expect(e.code).toBe('E_MATRIX_INVALID');
    expect(e.message.split('\n').slice(1)).toEqual([
      '  - kernel: expected string, got number',
      '  - cells[0].p99Ms: expected number, got string',
      '  - cells[0].verdict: unknown verdict "meh"',
      '  - cells[1]: expected object, got string',
    ]);
  });

  it('says what is missing: no such path, no matrix.json, not JSON', async () => {
    expect((await rejection(loadMatrix(join(dir, 'nope')))).code).toBe('E_MATRIX_NOT_FOUND');
    expect((await rejection(loadMatrix(dir))).message).toContain('no matrix.json in this directory');
    await writeFile(join(dir, 'matrix.json'), '{');
    expect((await rejection(loadMatrix(dir))).code).toBe('E_MATRIX_INVALID');
  });

  it('gives fields added after v1 neutral defaults when an older matrix lacks them', async () => {
    const m = macChurnMatrix();
    const old = { ...m, quick: undefined, failed: undefined, cells: m.cells.map(({ reason, affectedRate, histogram, failsRun, affected, ...c }) => c) };
    await writeFile(join(dir, 'matrix.json'), JSON.stringify(old));
    const loaded = await loadMatrix(dir);
    expect(loaded.failed).toBe(1);
    expect(loaded.cells[1]!.affectedRate).toBeCloseTo(1667 / 5000, 12);
    expect(loaded.cells[1]!.reason).toBe('');
    await regenerateReports(dir);
    expect(await readFile(join(dir, 'index.html'), 'utf8')).toContain('No latency distribution: ');
  });
});

describe('compareCommand', () => {
  it('exits 1 on a regression, 0 on the same matrix, and writes the comparison', async () => {
    const m = macChurnMatrix();
    const base = join(dir, 'base');
    const same = join(dir, 'same');
    const worse = join(dir, 'worse');
    await writeReports(m, base);
    await writeReports({ ...m, runId: 'same' }, same);
    const degraded = structuredClone(m);
    degraded.runId = 'worse';
    degraded.cells[2] = makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync', errors: 1500, slowMs: 2500 }, 3);
    await writeReports(degraded, worse);

    const quiet = () => {};
    expect(await compareCommand(base, same, {}, quiet)).toBe(0);
    const summary = join(dir, 'summary.md');
    vi.stubEnv('GITHUB_STEP_SUMMARY', summary);
    expect(await compareCommand(join(base, 'matrix.json'), worse, { out: worse }, quiet)).toBe(1);
    const md = await readFile(join(worse, 'compare.md'), 'utf8');
    expect(md).toContain('🔴 1 cell regressed');
    expect(await readFile(summary, 'utf8')).toBe(md);
  });
});
