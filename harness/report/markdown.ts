import { appendFile } from 'node:fs/promises';
import { fmtShareWithInterval } from '../measure/confidence.ts';
import { causeFlag, dropsUnavailableNote, whereItDied } from './drops-text.ts';
import { VERDICTS, type Cell, type Matrix, type Verdict } from './matrix.ts';

// ---- shared by every reporter: how a cell is named, grouped and formatted ----

export const VERDICT_MARK: Record<Verdict, string> = { pass: '✅', fail: '❌', 'not-reproduced': '⚠️', inconclusive: '❔', skipped: '⏭️', error: '💥' };
export { VERDICTS };

/** `mac-churn(stale-peers)`; a baseline is just `none` (its mode is `none` too). */
export function faultLabel(c: Pick<Cell, 'fault' | 'faultMode'>): string {
  return c.faultMode && c.faultMode !== 'none' ? `${c.fault}(${c.faultMode})` : c.fault;
}

/** True when the matrix mixes workloads or targets, so names must carry them to stay unique. */
export function hasManyTargets(cells: readonly Cell[]): boolean {
  return new Set(cells.map((c) => `${c.workload} ${c.target}`)).size > 1;
}

/** `<client> / <fault>(<mode>) / <mitigation>`, plus `[workload target]` only when the matrix needs it. */
export function cellName(c: Cell, withTarget: boolean): string {
  const base = `${c.client}${c.name ? ` (${c.name})` : ''} / ${faultLabel(c)} / ${c.mitigation}`;
  return withTarget ? `${base} [${c.workload} ${c.target}]` : base;
}

/** The row a cell sits in when mitigations are the columns. */
export function rowKey(c: Cell, withTarget: boolean): string {
  return [c.client, c.name ?? '', c.fault, c.faultMode, ...(withTarget ? [c.workload, c.target] : [])].join('\u0000');
}

/** Distinct values in first-seen order, with `none` first: the unmitigated column leads. */
export function mitigationsOf(cells: readonly Cell[]): string[] {
  const seen = [...new Set(cells.map((c) => c.mitigation))];
  return seen.includes('none') ? ['none', ...seen.filter((x) => x !== 'none')] : seen;
}

/** The matrix pivoted into rows of client × fault(mode), each with its cells by mitigation. */
export function pivot(cells: readonly Cell[]): { withTarget: boolean; mitigations: string[]; rows: { first: Cell; byMitigation: Map<string, Cell> }[] } {
  const withTarget = hasManyTargets(cells);
  const rows = new Map<string, { first: Cell; byMitigation: Map<string, Cell> }>();
  for (const c of cells) {
    const key = rowKey(c, withTarget);
    let row = rows.get(key);
    if (!row) rows.set(key, (row = { first: c, byMitigation: new Map() }));
    // A duplicate (same row and mitigation) keeps the first; the per-cell tables still list both.
    if (!row.byMitigation.has(c.mitigation)) row.byMitigation.set(c.mitigation, c);
  }
  return { withTarget, mitigations: mitigationsOf(cells), rows: [...rows.values()] };
}

export function countVerdicts(cells: readonly Cell[]): Record<Verdict, number> {
  const n: Record<Verdict, number> = { pass: 0, fail: 0, 'not-reproduced': 0, inconclusive: 0, skipped: 0, error: 0 };
  for (const c of cells) n[c.verdict] = (n[c.verdict] ?? 0) + 1;
  return n;
}

/** Share of lookups that failed or were slower than thresholdMs; older matrices lack the field. */
/** The cell's affected share as classify counted it (loadMatrix fills it for matrices written before it existed). */
export function affectedRateOf(c: Cell): number {
  return c.affectedRate;
}

/** "33 % (24–43 %)": the affected share with its interval; older matrices (no interval) the share alone. */
export function fmtAffected(c: Cell): string {
  return c.affectedInterval ? fmtShareWithInterval(affectedRateOf(c), c.affectedInterval) : fmtPct(affectedRateOf(c));
}

/** "settled after 3,100 lookups, 0.4 s" or "stopped at the cap after …"; '' for cells measured before stopping existed. */
export function fmtStopped(c: Cell): string {
  const s = c.stopped;
  if (!s) return '';
  const what = `${s.afterSamples.toLocaleString('en-US')} lookup${s.afterSamples === 1 ? '' : 's'}, ${(s.afterMs / 1000).toFixed(1)} s`;
  return `${s.by === 'settled' ? 'settled' : 'stopped at the cap'} after ${what}`;
}

/** Milliseconds with precision that suits the magnitude: 0.83, 12.4, 5,012. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 1000) return Math.round(ms).toLocaleString('en-US');
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

/** A 0..1 share as a percentage that still shows 1 in 5000. */
export function fmtPct(share: number): string {
  if (!Number.isFinite(share)) return '–';
  const p = share * 100;
  if (p === 0) return '0%';
  if (p >= 1) return `${p.toFixed(1)}%`;
  if (p >= 0.01) return `${p.toFixed(2)}%`;
  return `${p.toFixed(3)}%`;
}

export function fmtSeconds(s: number): string {
  return s >= 100 ? `${Math.round(s)} s` : `${s.toFixed(1)} s`;
}

/** Non-zero error kinds as `EAI_AGAIN×12, EAI_NONAME×1`. */
export function errorKinds(c: Cell): string {
  return Object.entries(c.errorsByKind ?? {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
}

/** The one-line verdict of the whole run, shared by the Markdown title and the HTML header. */
export function headline(m: Matrix): { verdict: Verdict; mark: string; text: string } {
  const n = countVerdicts(m.cells);
  const total = m.cells.length;
  const of = (verdict: Verdict, text: string) => ({ verdict, mark: VERDICT_MARK[verdict], text });
  if (total === 0) return of('fail', 'no cells were measured');
  if (m.failed > 0) return of('fail', `${m.failed} of ${total} cells failed`);
  if (n.inconclusive > 0) return of('inconclusive', `${n.inconclusive} of ${total} cells were inconclusive`);
  if (n['not-reproduced'] > 0) return of('not-reproduced', `${n['not-reproduced']} of ${total} cells did not reproduce the symptom`);
  return of('pass', `all ${total} cells met their expectation`);
}

/** Host facts as `key=value` pairs, sorted so reports diff cleanly between runs. */
export function hostPairs(m: Matrix): [string, string][] {
  return Object.entries(m.host ?? {})
    .map(([k, v]): [string, string] => [k, String(v)])
    .sort(([a], [b]) => a.localeCompare(b));
}

// ---- Markdown ----

/** Table cells must not break the row: pipes escaped, newlines flattened, no raw HTML. */
export function md(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|');
}

function code(text: string): string {
  const t = text.replace(/\r?\n/g, ' ');
  return t.includes('`') ? `\`\` ${t} \`\`` : `\`${t}\``;
}

function table(header: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const sep = header.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function matrixTable(m: Matrix): string {
  const { withTarget, mitigations, rows } = pivot(m.cells);
  const header = ['client', 'fault (mode)', ...(withTarget ? ['workload', 'target'] : []), ...mitigations.map((x) => `mitigation: ${md(x)}`)];
  const body = rows.map(({ first, byMitigation }) => [
    md(first.client),
    md(faultLabel(first)),
    ...(withTarget ? [md(first.workload), code(first.target)] : []),
    ...mitigations.map((mit) => {
      const c = byMitigation.get(mit);
      return c ? `${VERDICT_MARK[c.verdict]} p99 ${fmtMs(c.p99Ms)} ms · ${md(fmtAffected(c))} affected` : '—';
    }),
  ]);
  return table(header, body);
}

function cellsTable(m: Matrix): string {
  const withTarget = hasManyTargets(m.cells);
  const header = ['cell', 'verdict', 'expected', 'samples', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'threshold ms', 'affected', 'stopped'];
  const align: ('l' | 'r')[] = ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'];
  const body = m.cells.map((c) => {
    const kinds = errorKinds(c);
    return [
      md(cellName(c, withTarget)),
      `${VERDICT_MARK[c.verdict]} ${c.verdict}`,
      md(c.expectation),
      String(c.samples),
      fmtMs(c.p50Ms),
      fmtMs(c.p99Ms),
      fmtMs(c.maxMs),
      `${fmtPct(c.errorRate)}${kinds ? ` (${md(kinds)})` : ''}`,
      fmtMs(c.thresholdMs),
      md(fmtAffected(c)),
      md(fmtStopped(c)),
    ];
  });
  return table(header, body, align);
}

function attention(m: Matrix): string | undefined {
  const withTarget = hasManyTargets(m.cells);
  const bad = m.cells.filter((c) => c.verdict !== 'pass');
  if (bad.length === 0) return undefined;
  const lines = bad.map((c) => `- ${VERDICT_MARK[c.verdict]} **${md(cellName(c, withTarget))}** — ${c.verdict}: ${md(c.reason || 'no reason recorded')}`);
  return ['### Needs attention', '', ...lines].join('\n');
}

/** "Where it died": per cell, the kernel drop that explains its symptom (or a note that drops were unavailable). */
function whereItDiedSection(m: Matrix): string | undefined {
  const none = dropsUnavailableNote(m.cells);
  if (none) return ['### Where it died', '', md(none)].join('\n');
  const withTarget = hasManyTargets(m.cells);
  const lines = m.cells.flatMap((c) => {
    const died = whereItDied(c);
    const flag = causeFlag(c);
    if (!died && !flag) return [];
    return [`- **${md(cellName(c, withTarget))}** — ${md(died ?? 'no drop above the no-fault cell')}${flag ? ` · ⚑ ${md(flag)}` : ''}`];
  });
  if (lines.length === 0) return undefined;
  return ['### Where it died', '', 'Kernel drop reasons in the run\'s namespaces, the largest above the same client\'s no-fault cell (background noise left out).', '', ...lines].join('\n');
}

function environment(m: Matrix): string {
  const parts = [`kernel ${code(m.kernel)}`, `provider ${code(m.provider)}`, ...hostPairs(m).map(([k, v]) => `${md(k)} ${code(v)}`)];
  const run = [`run ${code(m.runId)}`, `started ${md(m.startedAt)}`, `took ${fmtSeconds(m.durationS)}`, ...(m.quick ? ['quick run (shortened cells)'] : [])];
  return ['### Environment', '', parts.join(' · '), '', run.join(' · ')].join('\n');
}

const pctOf = (confidence: number | undefined) => `${Math.round((confidence ?? 0.95) * 100)} %`;

/** A GitHub-flavoured Markdown report sized for a job summary. */
export function renderMarkdown(m: Matrix): string {
  const head = headline(m);
  const n = countVerdicts(m.cells);
  const counts = VERDICTS.filter((v) => n[v] > 0).map((v) => `${VERDICT_MARK[v]} ${n[v]} ${v}`);
  const withTarget = hasManyTargets(m.cells);
  const only = m.cells[0];
  const workload = !withTarget && only ? ` · workload ${md(only.workload)} → ${code(only.target)}` : '';
  const parts = [
    `## ${head.mark} vxchaos · ${md(m.suite)} — ${head.text}`,
    '',
    ...(m.description ? [md(m.description.trim()), ''] : []),
    `**${m.cells.length} cells:** ${counts.join(' · ') || 'none'}${workload}`,
    '',
    '### Matrix',
    '',
    `Per cell: verdict, p99 latency and the share of lookups affected (failed or slower than the cell's threshold) with its ${pctOf(only?.confidence)} interval. ${VERDICT_MARK.pass} met its expectation · ${VERDICT_MARK.fail} broke it · ${VERDICT_MARK['not-reproduced']} the symptom did not reproduce (a result, not a pass) · ${VERDICT_MARK.inconclusive} inconclusive: the interval did not decide within the cell's time · ${VERDICT_MARK.skipped} skipped: the provider cannot do what the cell needs · ${VERDICT_MARK.error} the cell threw; its changes were undone.`,
    '',
    matrixTable(m),
    '',
  ];
  const att = attention(m);
  if (att) parts.push(att, '');
  const died = whereItDiedSection(m);
  if (died) parts.push(died, '');
  parts.push('<details><summary>All cells</summary>', '', cellsTable(m), '', '</details>', '', environment(m), '');
  return parts.join('\n');
}

/** Appends to the GitHub Actions job summary when running there; returns whether it did. */
export async function appendJobSummary(markdown: string): Promise<boolean> {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) return false;
  await appendFile(file, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  return true;
}
