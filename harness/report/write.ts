import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { VxError } from '../errors.ts';
import { cellFailsRun, SCHEMA_VERSION, VERDICTS, type Cell, type Matrix } from './matrix.ts';
import { renderHtml } from './html.ts';
import { renderJUnit } from './junit.ts';
import { appendJobSummary, renderMarkdown } from './markdown.ts';

export const MATRIX_FILE = 'matrix.json';

/** A reporter turns a matrix into one file; picked by name (`--reporter`), each output written by one reporter. */
export interface Reporter {
  name: string;
  file: string;
  render(m: Matrix): string;
}

export const REPORTERS: readonly Reporter[] = [
  { name: 'json', file: MATRIX_FILE, render: (m) => `${JSON.stringify(m, null, 2)}\n` },
  { name: 'markdown', file: 'matrix.md', render: renderMarkdown },
  { name: 'junit', file: 'junit.xml', render: renderJUnit },
  { name: 'html', file: 'index.html', render: renderHtml },
];
export const REPORTER_NAMES = REPORTERS.map((r) => r.name);

export function reportersNamed(names: readonly string[] = REPORTER_NAMES): Reporter[] {
  const unknown = names.filter((n) => !REPORTER_NAMES.includes(n));
  if (unknown.length) throw new VxError('E_BAD_FLAG', `--reporter: unknown reporter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${REPORTER_NAMES.join(', ')})`);
  return REPORTERS.filter((r) => names.includes(r.name));
}

async function writeWith(m: Matrix, dir: string, reporters: readonly Reporter[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const r of reporters) {
    const path = join(dir, r.file);
    await writeFile(path, r.render(m));
    paths.push(path);
  }
  return paths;
}

/**
 * Writes the named reporters' files (default all: matrix.json, matrix.md, junit.xml, index.html) and, in CI,
 * appends the Markdown summary to the job summary once.
 */
export async function writeReports(m: Matrix, dir: string, names?: readonly string[]): Promise<string[]> {
  const paths = await writeWith(m, dir, reportersNamed(names));
  await appendJobSummary(renderMarkdown(m));
  return paths;
}

/**
 * Re-renders the reports of an existing run from its matrix.json (after a reporter changed, or on a
 * downloaded CI artifact). matrix.json itself is never rewritten, nor the job summary appended to.
 */
export async function regenerateReports(runDir: string): Promise<string[]> {
  const file = await matrixFile(runDir);
  const m = await loadMatrix(file);
  return writeWith(m, dirname(file), REPORTERS.filter((r) => r.file !== MATRIX_FILE));
}

/** A run directory or a matrix.json path → the matrix.json path, or a clear error. */
async function matrixFile(path: string): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new VxError('E_MATRIX_NOT_FOUND', `${path}: no such file or directory (expected a run directory or a ${MATRIX_FILE})`);
  if (!st.isDirectory()) return abs;
  const file = join(abs, MATRIX_FILE);
  if (!(await stat(file).catch(() => undefined))) throw new VxError('E_MATRIX_NOT_FOUND', `${path}: no ${MATRIX_FILE} in this directory; is it a vxchaos run directory (reports/<run-id>/)?`);
  return file;
}

type Kind = 'string' | 'number' | 'object';
const MATRIX_FIELDS: Record<string, Kind> = { suite: 'string', provider: 'string', runId: 'string', startedAt: 'string', durationS: 'number', kernel: 'string', host: 'object' };
const CELL_FIELDS: Record<string, Kind> = {
  client: 'string', fault: 'string', faultMode: 'string', mitigation: 'string', workload: 'string', target: 'string',
  samples: 'number', errors: 'number', errorRate: 'number', errorsByKind: 'object',
  p50Ms: 'number', p90Ms: 'number', p99Ms: 'number', p999Ms: 'number', maxMs: 'number',
  thresholdMs: 'number', overThreshold: 'number', counters: 'object', expectation: 'string', verdict: 'string',
};
const VERDICT_VALUES = new Set<string>(VERDICTS);

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Every contract problem at once: a half-valid matrix would render half-true reports. */
function problemsOf(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const check = (where: string, obj: Record<string, unknown>, fields: Record<string, Kind>) => {
    for (const [k, want] of Object.entries(fields)) {
      if (kindOf(obj[k]) !== want) problems.push(`${where}${k}: expected ${want}, got ${kindOf(obj[k])}`);
    }
  };
  check('', raw, MATRIX_FIELDS);
  if (!Array.isArray(raw.cells)) problems.push(`cells: expected array, got ${kindOf(raw.cells)}`);
  else
    raw.cells.forEach((c: unknown, i) => {
      if (kindOf(c) !== 'object') return void problems.push(`cells[${i}]: expected object, got ${kindOf(c)}`);
      const cell = c as Record<string, unknown>;
      check(`cells[${i}].`, cell, CELL_FIELDS);
      if (typeof cell.verdict === 'string' && !VERDICT_VALUES.has(cell.verdict)) problems.push(`cells[${i}].verdict: unknown verdict "${cell.verdict}"`);
      const iv = cell.affectedInterval;
      if (iv !== undefined && !(Array.isArray(iv) && iv.length === 2 && iv.every((x) => typeof x === 'number' && x >= 0 && x <= 1) && iv[0] <= iv[1])) {
        problems.push(`cells[${i}].affectedInterval: expected [lo, hi] with 0 ≤ lo ≤ hi ≤ 1, got ${JSON.stringify(iv)}`);
      }
    });
  return problems;
}

/** Fields added after schemaVersion 1 shipped may be absent in older files; give them neutral values. */
function withDefaults(raw: Matrix): Matrix {
  const cells = raw.cells.map(
    (c): Cell => ({
      ...c,
      reason: c.reason ?? '',
      threads: c.threads ?? 0,
      durationS: c.durationS ?? 0,
      fresh: c.fresh ?? false,
      histogram: c.histogram ?? '',
      countersByNode: c.countersByNode ?? {},
      // Matrices written before `affected` existed: failures plus slow lookups, an upper bound of the share.
      affectedRate: c.affectedRate ?? (c.samples > 0 ? Math.min(1, (c.errors + c.overThreshold) / c.samples) : 0),
    }),
  );
  return {
    ...raw,
    cells,
    quick: raw.quick ?? false,
    description: raw.description ?? '',
    failed: raw.failed ?? cells.filter(cellFailsRun).length,
  };
}

/** Reads a matrix from a run directory or a matrix.json path, checking schemaVersion and the contract's fields. */
export async function loadMatrix(path: string): Promise<Matrix> {
  const file = await matrixFile(path);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new VxError('E_MATRIX_INVALID', `${file}: not readable as JSON: ${(e as Error).message}`);
  }
  if (kindOf(raw) !== 'object') throw new VxError('E_MATRIX_INVALID', `${file}: expected a JSON object, got ${kindOf(raw)}`);
  const obj = raw as Record<string, unknown>;
  const v = obj.schemaVersion;
  if (v !== SCHEMA_VERSION) {
    const why =
      typeof v !== 'number' ? 'has no numeric schemaVersion; is it a vxchaos matrix?' : v > SCHEMA_VERSION ? 'was written by a newer vxchaos; upgrade to read it' : 'was written by an older vxchaos';
    throw new VxError('E_MATRIX_SCHEMA', `${file}: schemaVersion ${JSON.stringify(v)} is not supported (this vxchaos reads ${SCHEMA_VERSION}): the file ${why}`);
  }
  const problems = problemsOf(obj);
  if (problems.length) {
    const shown = problems.slice(0, 20).map((p) => `  - ${p}`);
    if (problems.length > shown.length) shown.push(`  … and ${problems.length - shown.length} more`);
    throw new VxError('E_MATRIX_INVALID', `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} with the matrix contract:\n${shown.join('\n')}`);
  }
  return withDefaults(obj as unknown as Matrix);
}
