import { DEFAULT_CONFIDENCE, fmtShare, fmtShareWithInterval, lnGamma, wilsonInterval } from '../measure/confidence.ts';
import type { Cell, Matrix, Verdict } from './matrix.ts';
import { VERDICT_MARK, affectedRateOf, cellName, fmtMs, fmtPct, hasManyTargets } from './markdown.ts';

export { lnGamma };

export type Change = 'regressed' | 'improved' | 'unchanged' | 'new' | 'missing';
export const CHANGES: readonly Change[] = ['regressed', 'improved', 'new', 'missing', 'unchanged'];
const CHANGE_MARK: Record<Change, string> = { regressed: '🔴', improved: '🟢', unchanged: '⚪', new: '🆕', missing: '❔' };

export interface CompareOptions {
  /** Significance level of the one-sided Fisher exact test on affected counts. */
  alpha: number;
  /** Control the family-wise error over all matched cells (Holm–Bonferroni), so a big matrix does not cry wolf. */
  holm: boolean;
  /** p99 regresses only when worse by more than this share of the baseline p99 … */
  p99RelativeMargin: number;
  /** … and by more than this many milliseconds: timers on a busy runner jitter by a few ms. */
  p99AbsoluteMarginMs: number;
  /** Level of the Wilson interval shown for each run's affected share (as the verdicts show it); shown, not tested. */
  confidence: number;
}

export const DEFAULT_COMPARE_OPTIONS: CompareOptions = { alpha: 0.01, holm: true, p99RelativeMargin: 0.5, p99AbsoluteMarginMs: 5, confidence: DEFAULT_CONFIDENCE };

export interface AffectedCounts {
  affected: number;
  samples: number;
  rate: number;
  /** Wilson interval of the share at CompareOptions.confidence, the one the run's own verdicts use. */
  interval: [number, number];
}

export interface CellComparison {
  /** (client, fault, faultMode, mitigation, workload, target): the identity cells match on. */
  key: string;
  name: string;
  change: Change;
  baseline?: Cell;
  current?: Cell;
  affected?: { baseline: AffectedCounts; current: AffectedCounts; pWorse: number; pBetter: number };
  p99?: { baselineMs: number; currentMs: number };
  /** Why the change is what it is, in words, one entry per rule that fired. */
  why: string[];
}

export interface RunInfo {
  suite: string;
  runId: string;
  provider: string;
  kernel: string;
  startedAt: string;
}

export interface CompareResult {
  baseline: RunInfo;
  current: RunInfo;
  options: CompareOptions;
  cells: CellComparison[];
  counts: Record<Change, number>;
  /** Differences of the runs themselves (suite, kernel, provider) worth reading before the cells. */
  notes: string[];
  /** How many cells were tested for a rate change (the Holm family size). */
  tested: number;
}

// ---- statistics: one-sided Fisher exact test on a 2×2 table of counts ----

function lnChoose(n: number, k: number): number {
  return lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);
}

/**
 * P(X ≥ k) for X ~ Hypergeometric(population N, successes K, draws n). Sums the tail that lies away from the
 * mode, where terms shrink monotonically, so nothing underflows before it stops mattering.
 */
export function hypergeometricUpperTail(k: number, N: number, K: number, n: number): number {
  const lo = Math.max(0, n - (N - K));
  const hi = Math.min(K, n);
  if (k <= lo) return 1;
  if (k > hi) return 0;
  const lnPmf = (x: number) => lnChoose(K, x) + lnChoose(N - K, n - x) - lnChoose(N, n);
  const mode = Math.floor(((n + 1) * (K + 1)) / (N + 2));
  if (k > mode) {
    let term = Math.exp(lnPmf(k));
    let sum = term;
    for (let x = k; x < hi && term > sum * 1e-17; x++) {
      term *= ((K - x) * (n - x)) / ((x + 1) * (N - K - n + x + 1));
      sum += term;
    }
    return Math.min(1, sum);
  }
  // k is at or below the mode: P(X ≥ k) = 1 − P(X ≤ k−1), the lower tail summed downwards.
  let term = Math.exp(lnPmf(k - 1));
  let sum = term;
  for (let x = k - 1; x > lo && term > sum * 1e-17; x--) {
    term *= (x * (N - K - n + x)) / ((K - x + 1) * (n - x + 1));
    sum += term;
  }
  return Math.min(1, Math.max(0, 1 - sum));
}

/** One-sided Fisher exact p-value for "group A's rate is higher than group B's" (kA of nA vs kB of nB). */
export function fisherGreater(kA: number, nA: number, kB: number, nB: number): number {
  return hypergeometricUpperTail(kA, nA + nB, kA + kB, nA);
}

/** Holm–Bonferroni: which of these p-values are significant at family-wise level alpha. */
export function holmSignificant(pValues: readonly number[], alpha: number): boolean[] {
  const order = pValues.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p);
  const out = pValues.map(() => false);
  for (let rank = 0; rank < order.length; rank++) {
    const { p, i } = order[rank]!;
    if (p > alpha / (order.length - rank)) break;
    out[i] = true;
  }
  return out;
}

// ---- matching and judging cells ----

export function cellKey(c: Cell): string {
  return [c.client, c.fault, c.faultMode, c.mitigation, c.workload, c.target, ...(c.name ? [c.name] : [])].join(' | ');
}

/** Cells by key; a repeated key (should not happen) gets `#2`, `#3` so nothing is silently dropped. */
function byKey(cells: readonly Cell[]): Map<string, Cell> {
  const out = new Map<string, Cell>();
  for (const c of cells) {
    let key = cellKey(c);
    for (let n = 2; out.has(key); n++) key = `${cellKey(c)} #${n}`;
    out.set(key, c);
  }
  return out;
}

function counts(c: Cell, confidence: number): AffectedCounts {
  const rate = affectedRateOf(c);
  const affected = Math.min(c.samples, Math.round(rate * c.samples));
  const [lo, hi] = wilsonInterval(affected, c.samples, confidence);
  return { affected, samples: c.samples, rate, interval: [lo, hi] };
}

/** "1,500/5,000: 30 % (29–31 %)": the counts and the share with its interval, as the verdicts print it. */
function shareWords(a: AffectedCounts): string {
  return `${a.affected.toLocaleString('en-US')}/${a.samples.toLocaleString('en-US')}: ${fmtShareWithInterval(a.rate, a.interval)}`;
}

function runInfo(m: Matrix): RunInfo {
  return { suite: m.suite, runId: m.runId, provider: m.provider, kernel: m.kernel, startedAt: m.startedAt };
}

/** p99 moved by more than both margins, in the direction `worse` → `better` of the two arguments. */
function p99Worse(fromMs: number, toMs: number, o: CompareOptions): boolean {
  return toMs > fromMs * (1 + o.p99RelativeMargin) && toMs - fromMs > o.p99AbsoluteMarginMs;
}

/**
 * Per-cell change between two runs of a suite. A cell regresses when its affected share is significantly
 * higher (one-sided Fisher exact on the counts, Holm-corrected over the matched cells), or when its p99 is
 * worse by both the relative and the absolute margin; `improved` is the mirror image. Anything else is noise.
 */
export function compareMatrices(baseline: Matrix, current: Matrix, opts: Partial<CompareOptions> = {}): CompareResult {
  const o: CompareOptions = { ...DEFAULT_COMPARE_OPTIONS, ...opts };
  const base = byKey(baseline.cells);
  const cur = byKey(current.cells);
  const withTarget = hasManyTargets([...baseline.cells, ...current.cells]);

  const matched: CellComparison[] = [];
  const cells: CellComparison[] = [];
  for (const [key, c] of cur) {
    const b = base.get(key);
    if (!b) {
      cells.push({ key, name: cellName(c, withTarget), change: 'new', current: c, why: ['no such cell in the baseline'] });
      continue;
    }
    const bc = counts(b, o.confidence);
    const cc = counts(c, o.confidence);
    const tested = bc.samples > 0 && cc.samples > 0;
    const cmp: CellComparison = {
      key,
      name: cellName(c, withTarget),
      change: 'unchanged',
      baseline: b,
      current: c,
      affected: {
        baseline: bc,
        current: cc,
        pWorse: tested ? fisherGreater(cc.affected, cc.samples, bc.affected, bc.samples) : 1,
        pBetter: tested ? fisherGreater(bc.affected, bc.samples, cc.affected, cc.samples) : 1,
      },
      p99: { baselineMs: b.p99Ms, currentMs: c.p99Ms },
      why: tested ? [] : ['no samples on one side; affected share not tested'],
    };
    matched.push(cmp);
    cells.push(cmp);
  }
  for (const [key, b] of base) {
    if (!cur.has(key)) cells.push({ key, name: cellName(b, withTarget), change: 'missing', baseline: b, why: ['not measured in the current run'] });
  }

  const tested = matched.filter((c) => c.affected!.baseline.samples > 0 && c.affected!.current.samples > 0);
  const significant = (ps: number[]) => (o.holm ? holmSignificant(ps, o.alpha) : ps.map((p) => p <= o.alpha));
  const worse = significant(tested.map((c) => c.affected!.pWorse));
  const better = significant(tested.map((c) => c.affected!.pBetter));
  const rateWorse = new Set(tested.filter((_, i) => worse[i]));
  const rateBetter = new Set(tested.filter((_, i) => better[i]));
  // Clusters side by side share the CPUs: a run's latencies depend on how many there were, its share does not.
  const p99Comparable = (baseline.clusters ?? 1) === (current.clusters ?? 1);

  for (const c of matched) {
    const a = c.affected!;
    const { baselineMs, currentMs } = c.p99!;
    const regress: string[] = [];
    const improve: string[] = [];
    const rateWords = `affected ${fmtShareWithInterval(a.baseline.rate, a.baseline.interval)} → ${fmtShareWithInterval(a.current.rate, a.current.interval)}`;
    if (rateWorse.has(c)) regress.push(`${rateWords} (p ${pWords(a.pWorse)})`);
    if (rateBetter.has(c)) improve.push(`${rateWords} (p ${pWords(a.pBetter)})`);
    if (p99Comparable && p99Worse(baselineMs, currentMs, o)) regress.push(`p99 ${fmtMs(baselineMs)} → ${fmtMs(currentMs)} ms`);
    if (p99Comparable && p99Worse(currentMs, baselineMs, o)) improve.push(`p99 ${fmtMs(baselineMs)} → ${fmtMs(currentMs)} ms`);
    // A regression anywhere outweighs an improvement elsewhere: the gate must not be talked out of it.
    if (regress.length) c.change = 'regressed';
    else if (improve.length) c.change = 'improved';
    c.why.push(...(regress.length ? regress : improve));
  }

  const order = (c: CellComparison) => CHANGES.indexOf(c.change);
  cells.sort((x, y) => order(x) - order(y));
  const tally = Object.fromEntries(CHANGES.map((ch) => [ch, cells.filter((c) => c.change === ch).length])) as Record<Change, number>;
  return { baseline: runInfo(baseline), current: runInfo(current), options: o, cells, counts: tally, notes: runNotes(baseline, current), tested: tested.length };
}

function runNotes(b: Matrix, c: Matrix): string[] {
  const notes: string[] = [];
  const diff = (what: string, x: string, y: string) => x !== y && notes.push(`${what} differs: ${x || '?'} → ${y || '?'}`);
  diff('suite', b.suite, c.suite);
  diff('provider', b.provider, c.provider);
  diff('kernel', b.kernel, c.kernel);
  if (b.quick !== c.quick) notes.push(`quick mode differs: ${b.quick ? 'quick' : 'full'} → ${c.quick ? 'quick' : 'full'} (sample counts are not alike)`);
  const layout = (m: Matrix) => ((m.clusters ?? 1) > 1 ? `${m.clusters} clusters side by side` : 'one cluster');
  if ((b.clusters ?? 1) !== (c.clusters ?? 1)) notes.push(`measured on ${layout(b)} → ${layout(c)}: p99 not compared (clusters side by side share the CPUs; run both with or both without --serial)`);
  return notes;
}

function pWords(p: number): string {
  const f = fmtP(p);
  return f.startsWith('<') ? f : `= ${f}`;
}

function fmtP(p: number): string {
  // exp() underflows below ~1e-308: say so rather than print a p of exactly zero.
  if (p < 1e-300) return '< 1e-300';
  return p < 1e-4 ? p.toExponential(1) : p.toPrecision(2);
}

// ---- Markdown ----

function esc(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\|/g, '\\|');
}

function verdictMove(b?: Verdict, c?: Verdict): string {
  // A verdict this file does not know yet still prints, with a neutral mark.
  const v = (x?: Verdict) => (x ? `${(VERDICT_MARK as Partial<Record<string, string>>)[x] ?? '❔'} ${x}` : '—');
  return b === c ? v(c) : `${v(b)} → ${v(c)}`;
}

function row(c: CellComparison, confidence: number): string {
  const a = c.affected;
  const rate = a ? `${shareWords(a.baseline)} → ${shareWords(a.current)}` : shareWords(counts((c.current ?? c.baseline)!, confidence));
  const p99 = c.p99 ? `${fmtMs(c.p99.baselineMs)} → ${fmtMs(c.p99.currentMs)}` : fmtMs((c.current ?? c.baseline!).p99Ms);
  const cells = [esc(c.name), `${CHANGE_MARK[c.change]} ${c.change}`, rate, a ? fmtP(a.pWorse) : '—', p99, verdictMove(c.baseline?.verdict, c.current?.verdict), esc(c.why.join('; '))];
  return `| ${cells.join(' | ')} |`;
}

function cellTable(rows: CellComparison[], confidence: number): string {
  return [
    '| cell | change | affected (baseline → current) | p (worse) | p99 ms | verdict | why |',
    '| --- | --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map((r) => row(r, confidence)),
  ].join('\n');
}

/** The comparison as Markdown for a job summary or PR comment: changed cells first, unchanged folded away. */
export function renderCompareMarkdown(r: CompareResult): string {
  const o = r.options;
  const title =
    r.counts.regressed > 0
      ? `${CHANGE_MARK.regressed} ${r.counts.regressed} cell${r.counts.regressed === 1 ? '' : 's'} regressed`
      : `${CHANGE_MARK.unchanged} no regression`;
  const run = (x: RunInfo) => `\`${x.runId}\` (${esc(x.suite)}, ${esc(x.provider)}, kernel \`${x.kernel}\`, ${esc(x.startedAt)})`;
  const tally = CHANGES.map((ch) => `${CHANGE_MARK[ch]} ${r.counts[ch]} ${ch}`).join(' · ');
  const rule =
    `A cell regresses when its affected share is higher by a one-sided Fisher exact test at α = ${o.alpha}` +
    `${o.holm ? ` (Holm-corrected over ${r.tested} matched cells)` : ''}, or when its p99 is worse by more than ` +
    `${fmtPct(o.p99RelativeMargin)} and more than ${o.p99AbsoluteMarginMs} ms; improvements are judged the same way. ` +
    `Each share shows its Wilson ${fmtShare(o.confidence)} % interval, as the verdicts do; the test decides, not whether intervals overlap.`;
  const changed = r.cells.filter((c) => c.change !== 'unchanged');
  const unchanged = r.cells.filter((c) => c.change === 'unchanged');
  const parts = [
    `## vxchaos compare · ${esc(r.current.suite)} — ${title}`,
    '',
    `baseline ${run(r.baseline)}  `,
    `current ${run(r.current)}`,
    '',
    ...(r.notes.length ? [...r.notes.map((n) => `> ⚠️ ${esc(n)}`), ''] : []),
    `**${r.cells.length} cells:** ${tally}`,
    '',
    rule,
    '',
  ];
  if (changed.length) parts.push(cellTable(changed, o.confidence), '');
  if (unchanged.length) parts.push(`<details><summary>${unchanged.length} unchanged cells</summary>`, '', cellTable(unchanged, o.confidence), '', '</details>', '');
  return parts.join('\n');
}
