/**
 * A reporter over several runs' matrices: one cross-version table from the nightly jobs' artifacts, a row per
 * (Kubernetes, flannel, runner) job, a column per cell. The nightly question is "did an upgrade bring a bug
 * back, or fix one?", so a column whose verdicts differ between rows is flagged.
 *
 *   npx tsx harness/report/cross-run.ts <artifacts-dir> > cross-version-matrix.md
 *
 * <artifacts-dir> holds one directory per job artifact (actions/download-artifact with a pattern), each
 * with labels.json ({k8s, flannel, runner, kernel}) and one reports/<run-id>/matrix.json per suite.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface JobLabels {
  k8s: string;
  flannel: string;
  runner: string;
  kernel?: string;
}

/** The fields of matrix.json (DESIGN.md contract, schemaVersion 1) this table reads. */
interface MatrixCell {
  client: string;
  fault: string;
  faultMode?: string;
  mitigation: string;
  verdict: string;
  errorRate?: number;
  affectedRate?: number;
  p99Ms?: number;
}

interface MatrixFile {
  schemaVersion: number;
  suite: string;
  kernel?: string;
  cells: MatrixCell[];
}

export interface JobResult {
  artifact: string;
  labels: JobLabels;
  /** Empty when the job produced no matrix (it failed before measuring). */
  matrices: MatrixFile[];
}

/** nightly-k8s-v1.36.1-flannel-v0.28.9-ubuntu-24.04 → labels, for artifacts without labels.json. */
export function labelsFromName(name: string): JobLabels | undefined {
  const m = /k8s-(v[\d.]+)-flannel-(v[\d.]+)-(.+)$/.exec(name);
  return m ? { k8s: m[1]!, flannel: m[2]!, runner: m[3]! } : undefined;
}

function findFiles(dir: string, name: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...findFiles(p, name));
    else if (entry === name) out.push(p);
  }
  return out;
}

export function collect(artifactsDir: string): JobResult[] {
  return readdirSync(artifactsDir)
    .sort()
    .map((artifact) => join(artifactsDir, artifact))
    .filter((p) => statSync(p).isDirectory())
    .map((dir) => {
      const labelsFile = findFiles(dir, 'labels.json')[0];
      const labels = labelsFile ? (JSON.parse(readFileSync(labelsFile, 'utf8')) as JobLabels) : labelsFromName(basename(dir));
      const matrices = findFiles(dir, 'matrix.json')
        .map((f) => JSON.parse(readFileSync(f, 'utf8')) as MatrixFile)
        .filter((m) => m.schemaVersion === 1 && Array.isArray(m.cells));
      return { artifact: basename(dir), labels: labels ?? { k8s: '?', flannel: '?', runner: basename(dir) }, matrices };
    });
}

function cellKey(suite: string, c: MatrixCell): string {
  return `${suite}: ${c.client} ${c.fault}${c.faultMode && c.faultMode !== 'none' ? `/${c.faultMode}` : ''} + ${c.mitigation}`;
}

const ICON: Record<string, string> = { pass: '✅', fail: '❌', 'not-reproduced': '⚪', inconclusive: '❔', skipped: '⏭', error: '⚠' };

function entry(c: MatrixCell): string {
  const rate = c.affectedRate ?? c.errorRate;
  const parts = [`${ICON[c.verdict] ?? '?'} ${c.verdict}`];
  if (rate !== undefined) parts.push(`${(rate * 100).toFixed(1)}%`);
  if (c.p99Ms !== undefined) parts.push(`p99 ${c.p99Ms >= 1000 ? `${(c.p99Ms / 1000).toFixed(1)} s` : `${c.p99Ms.toFixed(0)} ms`}`);
  return parts.join(' · ');
}

function cmpVersion(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split('.').map(Number);
  const pb = b.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** Markdown: one table, newest versions first; differing columns marked with ⚑. */
export function crossVersionTable(jobs: readonly JobResult[]): string {
  const columns: string[] = [];
  for (const j of jobs) for (const m of j.matrices) for (const c of m.cells) if (!columns.includes(cellKey(m.suite, c))) columns.push(cellKey(m.suite, c));
  const rows = [...jobs].sort(
    (a, b) => cmpVersion(b.labels.k8s, a.labels.k8s) || cmpVersion(b.labels.flannel, a.labels.flannel) || a.labels.runner.localeCompare(b.labels.runner),
  );
  const verdicts = (col: string) =>
    new Set(rows.flatMap((r) => r.matrices.flatMap((m) => m.cells.filter((c) => cellKey(m.suite, c) === col).map((c) => c.verdict))));
  const header = ['Kubernetes', 'flannel', 'runner', 'kernel', ...columns.map((c) => (verdicts(c).size > 1 ? `⚑ ${c}` : c))];
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const lines = [`| ${header.map(esc).join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`];
  for (const r of rows) {
    const kernel = r.labels.kernel ?? r.matrices[0]?.kernel ?? '';
    const cells = columns.map((col) => {
      for (const m of r.matrices) {
        const c = m.cells.find((x) => cellKey(m.suite, x) === col);
        if (c) return entry(c);
      }
      return r.matrices.length ? '—' : 'no matrix (job failed before measuring)';
    });
    lines.push(`| ${[r.labels.k8s, r.labels.flannel, r.labels.runner, kernel, ...cells].map(esc).join(' | ')} |`);
  }
  const all = rows.flatMap((r) => r.matrices.flatMap((m) => m.cells));
  const count = (v: string) => all.filter((c) => c.verdict === v).length;
  const missing = rows.filter((r) => r.matrices.length === 0).length;
  const summary =
    `${rows.length} jobs, ${all.length} cells: ${count('pass')} pass, ${count('fail')} fail, ${count('not-reproduced')} not reproduced` +
    (count('skipped') ? `, ${count('skipped')} skipped` : '') +
    (count('error') ? `, ${count('error')} error` : '') +
    (missing ? `, ${missing} jobs without a matrix` : '');
  return [
    '## Cross-version matrix (kind)',
    '',
    summary,
    '',
    '⚑ = the verdict differs between versions: an upgrade brought the bug back or fixed it. kind nodes share the runner\'s kernel.',
    '',
    ...lines,
    '',
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2];
  if (!dir || !existsSync(dir)) {
    process.stderr.write('usage: tsx harness/report/cross-run.ts <artifacts-dir>\n');
    process.exit(2);
  }
  process.stdout.write(crossVersionTable(collect(dir)));
}
