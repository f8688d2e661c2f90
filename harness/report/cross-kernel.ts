/**
 * One suite's runs on several kernels side by side: a column per kernel (oldest release first), a row per cell,
 * each entry verdict / affected share / p99 / drop cause, and the rows whose verdict differs between kernels
 * highlighted with one plain sentence each ("musl / conntrack-race(native) / none: reproduced on 5.10, not on
 * 6.1"). The question it answers: does our fleet's next kernel bring a symptom back, or make a mitigation moot?
 *
 *   vxchaos kernels-report <run>... [--suite NAME] [--out DIR]
 *   npx tsx harness/report/cross-kernel.ts <run>... [--suite NAME] [--out DIR]
 *
 * A <run> is a run directory, a matrix.json, or a directory of runs (a downloaded CI artifact), searched for
 * matrix.json. Runs of different suites are refused (exit 2) unless --suite picks one.
 */
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { VxError } from '../errors.ts';
import { cellKey } from './compare.ts';
import type { Cell, Matrix } from './matrix.ts';
import { VERDICT_MARK, affectedRateOf, appendJobSummary, cellName, fmtMs, fmtPct, hasManyTargets, md } from './markdown.ts';
import { badge, esc, verdictHue } from './html.ts';
import { MATRIX_FILE, loadMatrix } from './write.ts';

export const CROSS_KERNEL_MD = 'cross-kernel.md';
export const CROSS_KERNEL_HTML = 'cross-kernel.html';

// ---- the kernels ----

export interface KernelColumn {
  /** uname -r of the kernel under test. */
  release: string;
  /** uname -v; '' for matrices written before kernelUnderTest existed. */
  version: string;
  /** `host`, `debian:bookworm`, or the path the user gave. */
  source: string;
  notes: Record<string, string>;
  /** "6.1.0-29-amd64 · debian:bookworm" (plus the run id when two runs share both). */
  label: string;
  /** How sentences name it: the release, or the label when two columns share a release. */
  short: string;
  matrix: Matrix;
}

/** A matrix written before kernelUnderTest measured the harness's own kernel. */
function kernelOf(m: Matrix): { release: string; version: string; source: string; notes: Record<string, string> } {
  const k = m.kernelUnderTest;
  return k ? { release: k.release, version: k.version, source: k.source, notes: k.notes ?? {} } : { release: m.kernel, version: '', source: 'host', notes: {} };
}

/** Releases by their numbers (4.9 < 5.10 < 6.1.0-29 < 6.1.0-31 < 6.12), not as strings. */
export function compareReleases(a: string, b: string): number {
  const pa = (a.match(/\d+/g) ?? []).map(Number);
  const pb = (b.match(/\d+/g) ?? []).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d) return d;
  }
  return a.localeCompare(b);
}

/** A path source is named by its file: the column stays narrow, the full path is in the kernels table. */
function sourceLabel(source: string): string {
  return source.includes('/') ? basename(source.replace(/\/+$/, '')) : source;
}

function columnsOf(matrices: readonly Matrix[]): KernelColumn[] {
  const cols = matrices
    .map((matrix) => ({ matrix, ...kernelOf(matrix) }))
    .sort((a, b) => compareReleases(a.release, b.release) || a.source.localeCompare(b.source) || a.matrix.startedAt.localeCompare(b.matrix.startedAt));
  const count = <T>(xs: T[], x: T) => xs.filter((y) => y === x).length;
  const base = cols.map((c) => `${c.release} · ${sourceLabel(c.source)}`);
  return cols.map((c, i) => {
    const label = count(base, base[i]) > 1 ? `${base[i]} · run ${c.matrix.runId}` : base[i]!;
    const short = count(cols.map((x) => x.release), c.release) > 1 ? label : c.release;
    return { ...c, label, short };
  });
}

// ---- the rows ----

/** The top row of a cell's drops (another reporter's field, read leniently): what the kernel dropped, and where. */
export interface DropCause {
  reason: string;
  func: string;
  count: number;
  ns: string;
  iface: string;
}

export interface KernelRow {
  /** compare.ts's cellKey: client, fault, mode, mitigation, workload, target, name. */
  key: string;
  name: string;
  /** One per column; undefined where that run has no such cell. */
  entries: (Cell | undefined)[];
  /** The verdict differs between the kernels that measured the cell. */
  changed: boolean;
  /** What changed, in words; only for changed rows. */
  sentence?: string;
}

export interface CrossKernelReport {
  suite: string;
  description: string;
  columns: KernelColumn[];
  rows: KernelRow[];
  /** Differences between the runs themselves worth reading before the cells (provider, quick). */
  notes: string[];
}

/** The drops field as the drop tracer writes it; absent in matrices from before it, or when it was not running. */
interface DropsField {
  available?: boolean;
  // background: the noise label (measure/drops.ts backgroundLabel); excess: count over the no-fault cell.
  rows?: { reason?: string; func?: string; count?: number; excess?: number; ns?: string; iface?: string; background?: string | boolean }[];
}

export function dropCause(c: Cell): DropCause | undefined {
  const drops = (c as Cell & { drops?: DropsField }).drops;
  if (!drops?.available || !Array.isArray(drops.rows)) return undefined;
  // Rows come ranked by excess over the no-fault cell; background noise is labelled and never a cause.
  const top = drops.rows.find((r) => !r.background && (r.count ?? 0) > 0 && (r.excess ?? 1) > 0);
  if (!top?.reason) return undefined;
  return { reason: top.reason, func: top.func ?? '', count: top.count ?? 0, ns: top.ns ?? '', iface: top.iface ?? '' };
}

/** What a kernel showed for a cell, in the words a sentence uses; `not X` pairs read as "X on A, not on B". */
export function outcomeOf(c: Cell): string {
  switch (c.verdict) {
    case 'skipped':
      return 'skipped';
    case 'error':
      return 'errored';
    case 'not-reproduced':
      return 'not reproduced';
    case 'pass':
      return c.expectation === 'reproduces' ? 'reproduced' : 'clean';
    case 'fail':
      if (c.expectation === 'clean') return 'not clean';
      return affectedRateOf(c) > 0 ? 'reproduced outside the expected range' : 'failed';
    default:
      // A verdict this file does not know yet (e.g. inconclusive) is named as it is.
      return String(c.verdict);
  }
}

function list(xs: readonly string[]): string {
  return xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`;
}

/** "musl / conntrack-race(native) / none: reproduced on 5.10.0-32-amd64, not on 6.1.0-29-amd64 and 6.12.12-amd64". */
export function changeSentence(name: string, entries: readonly (Cell | undefined)[], columns: readonly KernelColumn[]): string {
  const groups: { outcome: string; kernels: string[]; first?: Cell }[] = [];
  entries.forEach((c, i) => {
    const outcome = c ? outcomeOf(c) : 'not measured';
    const g = groups.find((x) => x.outcome === outcome);
    if (g) g.kernels.push(columns[i]!.short);
    else groups.push({ outcome, kernels: [columns[i]!.short], ...(c ? { first: c } : {}) });
  });
  const phrases = groups.map((g, i) => {
    const negated = g.outcome.startsWith('not ') && groups.slice(0, i).some((x) => `not ${x.outcome}` === g.outcome);
    // A skip or an error is no finding about the kernel until its reason is read: say it.
    const why = (g.outcome === 'skipped' || g.outcome === 'errored') && g.first?.reason ? ` (${g.first.reason.split('\n')[0]})` : '';
    return `${negated ? 'not' : g.outcome} on ${list(g.kernels)}${why}`;
  });
  return `${name}: ${phrases.join(groups.length > 2 ? '; ' : ', ')}`;
}

/**
 * The report's data: columns ordered by kernel release, rows in the suite's order (first seen), changed rows
 * marked. Throws E_MIXED_SUITES (exit 2) for runs of different suites: their cells do not line up.
 */
export function crossKernel(matrices: readonly Matrix[]): CrossKernelReport {
  if (matrices.length === 0) throw new VxError('E_NO_RUNS', 'no runs to put side by side (give run directories or matrix.json files)');
  const suites = [...new Set(matrices.map((m) => m.suite))];
  if (suites.length > 1) {
    const which = suites.map((s) => `${s} (${matrices.filter((m) => m.suite === s).map((m) => m.runId).join(', ')})`);
    throw new VxError('E_MIXED_SUITES', `these runs are of different suites: ${which.join('; ')}; a cross-kernel report compares one suite's runs — give the runs of one suite, or pick one with --suite`);
  }
  const columns = columnsOf(matrices);
  const all = columns.flatMap((c) => c.matrix.cells);
  const withTarget = hasManyTargets(all);
  const rows = new Map<string, KernelRow>();
  for (const c of all) {
    const key = cellKey(c);
    if (!rows.has(key)) rows.set(key, { key, name: cellName(c, withTarget), entries: [], changed: false });
  }
  for (const row of rows.values()) {
    row.entries = columns.map((col) => col.matrix.cells.find((c) => cellKey(c) === row.key));
    row.changed = new Set(row.entries.flatMap((c) => (c ? [c.verdict] : []))).size > 1;
    if (row.changed) row.sentence = changeSentence(row.name, row.entries, columns);
  }
  const notes: string[] = [];
  const differ = (what: string, f: (m: Matrix) => string) => {
    const vals = columns.map((c) => `${c.short}: ${f(c.matrix)}`);
    if (new Set(columns.map((c) => f(c.matrix))).size > 1) notes.push(`${what} differs between the runs (${vals.join(', ')})`);
  };
  differ('provider', (m) => m.provider);
  differ('quick mode', (m) => (m.quick ? 'quick' : 'full'));
  if (columns.length === 1) notes.push('only one kernel: nothing to compare yet');
  return { suite: suites[0]!, description: matrices[0]!.description, columns, rows: [...rows.values()], notes };
}

// ---- Markdown ----


function mark(verdict: string): string {
  return (VERDICT_MARK as Partial<Record<string, string>>)[verdict] ?? '❔';
}

function dropWords(d: DropCause): string {
  return `${d.reason}${d.func ? ` in ${d.func}` : ''} ×${d.count}`;
}

function headline(r: CrossKernelReport): string {
  const changed = r.rows.filter((x) => x.changed).length;
  return `${r.columns.length} kernel${r.columns.length === 1 ? '' : 's'}, ${r.rows.length} cells: ${changed ? `${changed} changed verdict between kernels` : 'the same verdicts on every kernel'}`;
}

/** GitHub-flavoured Markdown for a job summary: what changed first, then the side-by-side table. */
export function renderCrossKernelMarkdown(r: CrossKernelReport): string {
  const changed = r.rows.filter((x) => x.changed);
  const entry = (c: Cell | undefined) => {
    if (!c) return '—';
    const d = dropCause(c);
    const parts = [`${mark(c.verdict)} ${c.verdict}`];
    if (c.verdict !== 'skipped') parts.push(`${fmtPct(affectedRateOf(c))} affected`, `p99 ${fmtMs(c.p99Ms)} ms`);
    if (d) parts.push(`drop: ${dropWords(d)}`);
    return md(parts.join(' · '));
  };
  const header = ['', 'cell', ...r.columns.map((c) => md(c.label))];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`];
  for (const row of r.rows) lines.push(`| ${row.changed ? '⚑' : ''} | ${row.changed ? `**${md(row.name)}**` : md(row.name)} | ${row.entries.map(entry).join(' | ')} |`);
  const kernels = r.columns.map((c) => {
    const notes = Object.entries(c.notes).map(([k, v]) => `${k} ${v}`);
    const host = c.matrix.host?.kernel;
    const facts = [c.version && `\`${c.version}\``, `run \`${c.matrix.runId}\``, c.matrix.provider, c.matrix.quick ? 'quick' : '', host && host !== c.release ? `harness host ${host}` : '', ...notes].filter(Boolean);
    return `- **${md(c.label)}** — ${md(facts.join(' · '))}`;
  });
  return [
    `## vxchaos · ${md(r.suite)} across kernels — ${headline(r)}`,
    '',
    ...(r.notes.length ? [...r.notes.map((n) => `> ⚠️ ${md(n)}`), ''] : []),
    ...(changed.length ? ['### What changed', '', ...changed.map((x) => `- ⚑ ${md(x.sentence!)}`), ''] : []),
    '### Side by side',
    '',
    `A column per kernel, oldest release first; ⚑ marks a cell whose verdict differs between kernels. Per entry: verdict, share of lookups affected (failed or slower than the threshold), p99 latency, and the kernel's top drop reason when the drop tracer ran.`,
    '',
    ...lines,
    '',
    '### Kernels',
    '',
    ...kernels,
    '',
  ].join('\n');
}

// ---- HTML (self-contained, no script, no network) ----


const hue = verdictHue;

function htmlEntry(c: Cell | undefined): string {
  if (!c) return '<td class="empty" title="no such cell in this run">—</td>';
  const d = dropCause(c);
  const nums = c.verdict === 'skipped' ? '' : `<span class="num">${esc(fmtPct(affectedRateOf(c)))} affected</span><span class="num">p99 ${esc(fmtMs(c.p99Ms))} ms</span>`;
  const drop = d ? `<span class="drop" title="${esc(`${d.ns} ${d.iface}`.trim())}">drop: <code>${esc(d.reason)}</code>${d.func ? ` in <code>${esc(d.func)}</code>` : ''} ×${esc(d.count)}</span>` : '';
  return `<td class="v" style="background:hsl(${hue(c.verdict)} 62% 92%)" title="${esc(c.reason || 'no reason recorded')}"><b>${badge(c.verdict)} ${esc(c.verdict)}</b>${nums}${drop}</td>`;
}

const CSS = `
:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--flag:#bf8700}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);margin:0;background:#f6f8fa}
main{max-width:1400px;margin:0 auto;padding:20px 28px 48px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 12px} .muted{color:var(--muted)}
.changes{background:#fff8c5;border:1px solid #d4a72c;border-left:5px solid var(--flag);border-radius:6px;padding:10px 16px;margin:12px 0}
.changes h2{margin:0 0 6px;font-size:15px} .changes ul{margin:0;padding-left:20px} .changes li{margin:3px 0}
.notes{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 14px;color:var(--muted)}
table{border-collapse:collapse;background:#fff}
.side th,.side td{border:1px solid var(--line);padding:7px 10px;text-align:left;vertical-align:top}
.side thead th{background:#eaeef2;font-weight:400;min-width:170px} .side thead th b{display:block;font-weight:600}
.side thead th .src{display:inline-block;border:1px solid var(--line);background:#fff;border-radius:10px;padding:0 8px;margin-top:2px;font-size:12.5px}
.side thead th .kn{display:block;color:var(--muted);font-size:12px}
.side tbody th{font-weight:500;white-space:nowrap}
.side tr.changed th{background:#fff8c5;box-shadow:inset 5px 0 0 var(--flag)} .side tr.changed td{box-shadow:inset 0 3px 0 var(--flag)}
.side .flag{color:var(--flag);font-weight:700;margin-right:4px}
.side .num{display:block;font-variant-numeric:tabular-nums} .side .drop{display:block;font-size:12.5px;color:#6e3630}
.side td.empty{color:var(--muted);text-align:center}
.legend{color:var(--muted);font-size:12.5px;max-width:1000px}
.badge{display:inline-block;width:1.35em;height:1.35em;line-height:1.35em;border-radius:50%;color:#fff;text-align:center;font-weight:700;font-size:.85em;vertical-align:.05em}
.kv th,.kv td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top} .kv thead th{background:#eaeef2}
code{font-size:12.5px}
`;

/** One self-contained page: what changed, the side-by-side table, and the kernels with their facts. */
export function renderCrossKernelHtml(r: CrossKernelReport): string {
  const changed = r.rows.filter((x) => x.changed);
  const head = r.columns
    .map((c) => {
      const notes = Object.entries(c.notes).map(([k, v]) => `${k} ${v}`).join(' · ');
      return `<th scope="col" title="${esc(c.version)}"><b>${esc(c.release)}</b><span class="src">${esc(sourceLabel(c.source))}</span>${notes ? `<span class="kn">${esc(notes)}</span>` : ''}${c.label.includes(' · run ') ? `<span class="kn">run ${esc(c.matrix.runId)}</span>` : ''}</th>`;
    })
    .join('');
  const body = r.rows
    .map((row) => {
      const name = `${row.changed ? '<span class="flag" aria-label="changed">⚑</span>' : ''}${esc(row.name)}`;
      return `<tr${row.changed ? ` class="changed" title="${esc(row.sentence!)}"` : ''}><th scope="row">${name}</th>${row.entries.map(htmlEntry).join('')}</tr>`;
    })
    .join('\n');
  const kernels = r.columns
    .map((c) => {
      const cells = [
        c.label,
        c.version || '—',
        c.source,
        Object.entries(c.notes).map(([k, v]) => `${k}=${v}`).join(', ') || '—',
        c.matrix.host?.kernel ?? '—',
        `${c.matrix.runId} · ${c.matrix.provider}${c.matrix.quick ? ' · quick' : ''} · ${c.matrix.startedAt}`,
      ];
      return `<tr>${cells.map((x) => `<td>${esc(x)}</td>`).join('')}</tr>`;
    })
    .join('');
  const title = `vxchaos · ${r.suite} across kernels`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — ${esc(headline(r))}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${esc(title)}</h1>
<p class="sub">${esc(headline(r))}${r.description ? ` — ${esc(r.description.trim())}` : ''}</p>
${r.notes.length ? `<div class="notes">${r.notes.map((n) => `<p>⚠ ${esc(n)}</p>`).join('')}</div>` : ''}
${changed.length ? `<section class="changes" id="changes"><h2>⚑ What changed between kernels</h2><ul>${changed.map((x) => `<li>${esc(x.sentence!)}</li>`).join('')}</ul></section>` : '<p class="muted" id="changes">Every cell has the same verdict on every kernel.</p>'}
<h2>Side by side</h2>
<table class="side" id="kernels-matrix"><thead><tr><th scope="col">cell</th>${head}</tr></thead>
<tbody>
${body}
</tbody></table>
<p class="legend">A column per kernel, oldest release first. Per entry: verdict, share of lookups affected (failed or slower than the cell's threshold), p99 latency, and the kernel's top drop reason when the drop tracer ran. ⚑ and the yellow edge mark a cell whose verdict differs between kernels. Hover an entry for the verdict's reason.</p>
<h2>Kernels</h2>
<table class="kv"><thead><tr><th>kernel</th><th>version (uname -v)</th><th>source</th><th>notes</th><th>harness host kernel</th><th>run</th></tr></thead><tbody>${kernels}</tbody></table>
</main>
</body>
</html>
`;
}

// ---- loading and the command ----

/** Matrix files under a path: the file itself, a run directory's matrix.json, or every one below a directory of runs. */
async function matrixPaths(path: string): Promise<string[]> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st?.isDirectory()) return [abs]; // loadMatrix says what is wrong with it
  if (await stat(join(abs, MATRIX_FILE)).catch(() => undefined)) return [join(abs, MATRIX_FILE)];
  const found = (await readdir(abs, { recursive: true })).filter((p) => basename(p) === MATRIX_FILE).sort();
  if (found.length === 0) throw new VxError('E_MATRIX_NOT_FOUND', `${path}: no ${MATRIX_FILE} in or below this directory`);
  return found.map((p) => join(abs, p));
}

/** Loads every run (through write.ts's loadMatrix: schema and contract checked); --suite keeps only that suite's runs. */
export async function loadRuns(paths: readonly string[], suite?: string): Promise<Matrix[]> {
  const files = [...new Set((await Promise.all(paths.map(matrixPaths))).flat())];
  const matrices = await Promise.all(files.map((f) => loadMatrix(f)));
  if (suite === undefined) return matrices;
  const picked = matrices.filter((m) => m.suite === suite);
  if (picked.length === 0) throw new VxError('E_NO_RUNS', `no run of suite ${suite} among ${files.length} matrices (suites: ${[...new Set(matrices.map((m) => m.suite))].join(', ') || 'none'})`);
  return picked;
}

type Print = (text: string) => void;
const stdout: Print = (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/**
 * `vxchaos kernels-report <run>...`: prints the Markdown, writes cross-kernel.md and cross-kernel.html to --out,
 * appends the Markdown to the CI job summary. Returns 0: a verdict that changes with the kernel is a finding.
 */
export async function kernelsReport(paths: readonly string[], opts: { suite?: string; out?: string } = {}, print: Print = stdout): Promise<number> {
  const report = crossKernel(await loadRuns(paths, opts.suite));
  const markdown = renderCrossKernelMarkdown(report);
  print(markdown);
  if (opts.out) {
    await mkdir(opts.out, { recursive: true });
    for (const [file, text] of [
      [CROSS_KERNEL_MD, markdown],
      [CROSS_KERNEL_HTML, renderCrossKernelHtml(report)],
    ] as const) {
      await writeFile(join(opts.out, file), text);
      print(`wrote ${join(opts.out, file)}`);
    }
  }
  await appendJobSummary(markdown);
  return 0;
}

/** The command, defined once: harness/cli.ts adds it with program.addCommand(kernelsReportCommand()). */
export function kernelsReportCommand(): Command {
  return new Command('kernels-report')
    .description("one suite's runs on several kernels side by side: a column per kernel, changed verdicts highlighted")
    .argument('<runs...>', 'run directories, matrix.json files, or directories of runs (searched for matrix.json)')
    .option('--suite <name>', 'only the runs of this suite (runs of different suites are refused otherwise)')
    .option('--out <dir>', `also write ${CROSS_KERNEL_MD} and ${CROSS_KERNEL_HTML} here`)
    .action(async (runs: string[], o: { suite?: string; out?: string }) => {
      process.exitCode = await kernelsReport(runs, o);
    });
}

// Real paths: the script may be reached through a symlink (a checkout linked into a job's directory).
if (process.argv[1] && existsSync(process.argv[1]) && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])) {
  // No top-level await: the module is also imported from CommonJS contexts (tsx outside the package).
  kernelsReportCommand()
    .name('cross-kernel.ts')
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      process.stderr.write(`vxchaos: ${(e as Error).message}\n`);
      process.exitCode = e instanceof VxError ? e.exitCode : 2;
    });
}
