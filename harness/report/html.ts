import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { JsHistogram, decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { matchesCause } from '../measure/cause.ts';
import { causeFlag, packetsOf, whereItDied } from './drops-text.ts';
import type { Cell, Matrix, Verdict } from './matrix.ts';
import {
  VERDICTS,
  fmtAffected,
  fmtStopped,
  cellName,
  countVerdicts,
  errorKinds,
  faultLabel,
  fmtMs,
  fmtPct,
  fmtSeconds,
  hasManyTargets,
  headline,
  hostPairs,
  pivot,
} from './markdown.ts';

// ---- latency distributions from the cells' HdrHistograms ----

/** CDF points are merged into log-spaced bins: keeps the file small while the steps stay within ~1% of x. */
const CDF_BINS_PER_DECADE = 100;
/** The histograms hold µs; the smallest x a log axis can show is 1 µs. */
const US_PER_MS = 1000;

export interface Cdf {
  /** Latency in ms, ascending. */
  x: number[];
  /** Share of all the cell's lookups that completed within x. */
  y: number[];
  /** Lookups in the histogram, and lookups the cell counted (failures may carry no latency). */
  recorded: number;
  samples: number;
}

/** The cumulative distribution of a cell's latencies, over all its lookups (so unrecorded failures keep it below 1). */
export function cdfOf(c: Cell): Cdf {
  if (!c.histogram) throw new Error('no latency histogram in the matrix');
  const h = decodeFromCompressedBase64(c.histogram);
  try {
    if (!(h instanceof JsHistogram)) throw new Error('histogram did not decode to a JS histogram');
    const total = Math.max(c.samples, h.totalCount);
    const capUs = c.maxMs > 0 ? c.maxMs * US_PER_MS : Number.POSITIVE_INFINITY;
    const out: Cdf = { x: [], y: [], recorded: h.totalCount, samples: c.samples };
    const it = h.recordedValuesIterator;
    it.reset();
    let lastBin = Number.NaN;
    while (it.hasNext()) {
      const v = it.next();
      // valueIteratedTo is the bucket's upper bound; no lookup took longer than the cell's measured max.
      const ms = Math.max(Math.min(v.valueIteratedTo, capUs), 1) / US_PER_MS;
      const y = total > 0 ? v.totalCountToThisValue / total : 0;
      const bin = Math.floor(Math.log10(ms) * CDF_BINS_PER_DECADE);
      // Same bin as the previous point: keep only the later (higher) step.
      if (bin === lastBin) {
        out.x[out.x.length - 1] = ms;
        out.y[out.y.length - 1] = y;
      } else {
        out.x.push(ms);
        out.y.push(y);
      }
      lastBin = bin;
    }
    return out;
  } finally {
    h.destroy();
  }
}

/** Step function value of a CDF at x: the last step at or left of x. */
function cdfAt(cdf: Cdf, x: number): number {
  let lo = 0;
  let hi = cdf.x.length - 1;
  let y = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cdf.x[mid]! <= x) {
      y = cdf.y[mid]!;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return y;
}

/** Several CDFs on one shared x axis (uPlot wants aligned columns), starting from 0 just left of the first step. */
export function alignCdfs(cdfs: readonly Cdf[]): { x: number[]; ys: number[][] } {
  const xs = [...new Set(cdfs.flatMap((c) => c.x))].sort((a, b) => a - b);
  if (xs.length === 0) return { x: [], ys: cdfs.map(() => []) };
  const x = [xs[0]! / 10 ** (1 / CDF_BINS_PER_DECADE), ...xs];
  return { x, ys: cdfs.map((c) => x.map((xi) => cdfAt(c, xi))) };
}

// ---- which cell a cell is compared with ----

function sameRow(a: Cell, b: Cell): boolean {
  return a.client === b.client && a.workload === b.workload && a.target === b.target;
}

/**
 * A mitigated cell is drawn against the unmitigated cell of its client × fault × mode; an unmitigated
 * fault cell against the client's no-fault baseline, which shows what the fault itself costs.
 */
export function referenceOf(c: Cell, cells: readonly Cell[]): { cell: Cell; role: string } | undefined {
  if (c.mitigation !== 'none') {
    const ref = cells.find((o) => sameRow(o, c) && o.fault === c.fault && o.faultMode === c.faultMode && o.mitigation === 'none');
    return ref && { cell: ref, role: 'unmitigated' };
  }
  if (c.fault !== 'none') {
    const ref = cells.find((o) => sameRow(o, c) && o.fault === 'none' && o.mitigation === 'none');
    return ref && { cell: ref, role: 'no-fault baseline' };
  }
  return undefined;
}

// ---- colours ----

const VERDICT_HUE: Record<Verdict, number> = { pass: 140, fail: 2, 'not-reproduced': 38, inconclusive: 265, skipped: 210, error: 300 };

/**
 * Heat-map shade: hue by verdict, depth by p99 on a log scale from the fastest p99 of the run to the cell's
 * own threshold, so a tail that reaches the threshold is dark whatever the verdict.
 */
function heat(c: Cell, fastestP99: number): { bg: string; fg: string } {
  const lo = Math.max(fastestP99, 1 / US_PER_MS);
  const span = Math.log(Math.max(c.thresholdMs, lo * 10) / lo);
  const t = Math.min(1, Math.max(0, Math.log(Math.max(c.p99Ms, lo) / lo) / span));
  const light = 93 - t * 45;
  return { bg: `hsl(${VERDICT_HUE[c.verdict]} 62% ${light.toFixed(1)}%)`, fg: light < 62 ? '#fff' : '#1b1f24' };
}

/** A verdict's hue in every vxchaos page; a verdict this version does not know gets a neutral one. */
export function verdictHue(v: string): number {
  return (VERDICT_HUE as Partial<Record<string, number>>)[v] ?? 260;
}

function verdictColor(v: string): string {
  return `hsl(${verdictHue(v)} 70% 40%)`;
}

// Plain glyphs in a coloured disc instead of emoji: they render without an emoji font (CI screenshots, old desktops).
const BADGE_GLYPH: Record<Verdict, string> = { pass: '✓', fail: '✗', 'not-reproduced': '!', inconclusive: '?', skipped: '–', error: '‼' };
export function badge(v: string): string {
  return `<span class="badge" style="background:${verdictColor(v)}" role="img" aria-label="${esc(v)}">${(BADGE_GLYPH as Partial<Record<string, string>>)[v] ?? '?'}</span>`;
}

// ---- HTML pieces (escaped server-side; only the charts need script) ----

export function esc(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** JSON that cannot close its <script> element or open a comment inside it. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Inlined library code must not contain a literal end tag of its own element. */
function inline(code: string, tag: 'script' | 'style'): string {
  return code.replace(new RegExp(`</${tag}`, 'gi'), `<\\/${tag}`);
}

const requireFromHere = createRequire(import.meta.url);
function asset(path: string): string {
  return readFileSync(requireFromHere.resolve(path), 'utf8');
}

function heatMap(m: Matrix, ids: Map<Cell, string>): string {
  const { withTarget, mitigations, rows } = pivot(m.cells);
  const positive = m.cells.map((c) => c.p99Ms).filter((x) => x > 0);
  const fastest = positive.length ? Math.min(...positive) : 1 / US_PER_MS;
  const head = ['client', 'fault (mode)', ...(withTarget ? ['workload', 'target'] : [])].map((h) => `<th scope="col">${esc(h)}</th>`);
  const mitHead = mitigations.map((x) => `<th scope="col" class="mit">mitigation<br><b>${esc(x)}</b></th>`);
  const body = rows.map(({ first, byMitigation }) => {
    const lead = [first.client, faultLabel(first), ...(withTarget ? [first.workload, first.target] : [])].map((v) => `<th scope="row">${esc(v)}</th>`);
    const tds = mitigations.map((mit) => {
      const c = byMitigation.get(mit);
      if (!c) return '<td class="empty">—</td>';
      const { bg, fg } = heat(c, fastest);
      return (
        `<td class="heat" style="background:${bg};color:${fg}" title="${esc(c.reason)}">` +
        `<a href="#${ids.get(c)}" style="color:${fg}">${badge(c.verdict)} ${esc(c.verdict)}` +
        `<span class="num">p99 ${esc(fmtMs(c.p99Ms))} ms</span><span class="num">${esc(fmtAffected(c))} affected</span></a></td>`
      );
    });
    return `<tr>${lead.join('')}${tds.join('')}</tr>`;
  });
  return (
    `<table class="heatmap" id="matrix"><thead><tr>${head.join('')}${mitHead.join('')}</tr></thead>` +
    `<tbody>${body.join('')}</tbody></table>` +
    `<p class="legend">Hue: verdict (${VERDICTS.map((v) => `${badge(v)} ${esc(v)}`).join(' ')}). ` +
    `Depth: p99 on a log scale, from the run's fastest p99 (${esc(fmtMs(fastest))} ms, light) to each cell's threshold (dark). ` +
    `Affected = failed or slower than the threshold, with its confidence interval. Click a cell for its distribution.</p>`
  );
}

function kv(rows: [string, string][]): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

/** The counters that moved (on any node), then the rest folded: the one that matters is not buried under zeros. */
function countersTable(c: Cell): string {
  const names = Object.keys(c.counters ?? {});
  if (names.length === 0) return '<p class="muted">No kernel counters recorded.</p>';
  const nodes = Object.keys(c.countersByNode ?? {});
  const head = `<thead><tr><th scope="col">counter</th><th scope="col">total</th>${nodes.map((n) => `<th scope="col">${esc(n)}</th>`).join('')}</tr></thead>`;
  const row = (k: string) => {
    const perNode = nodes.map((n) => `<td>${esc(c.countersByNode[n]?.[k] ?? '—')}</td>`).join('');
    return `<tr${c.counters[k] ? ' class="nonzero"' : ''}><th scope="row"><code>${esc(k)}</code></th><td>${esc(c.counters[k])}</td>${perNode}</tr>`;
  };
  const moved = (k: string) => c.counters[k] !== 0 || nodes.some((n) => (c.countersByNode[n]?.[k] ?? 0) !== 0);
  const [up, still] = [names.filter(moved), names.filter((k) => !moved(k))];
  const table = (ks: string[]) => `<table class="counters">${head}<tbody>${ks.map(row).join('')}</tbody></table>`;
  return (
    (up.length ? table(up) : '<p class="muted">No counter moved.</p>') +
    (still.length ? `<details class="folded"><summary>${still.length} counter${still.length === 1 ? '' : 's'} that did not move</summary>${table(still)}</details>` : '')
  );
}

/** Where the cell's packets died: the tracer's rows, ranked by excess over the no-fault cell, the declared cause marked. */
function dropsTable(c: Cell): string {
  const d = c.drops;
  if (!d) return '';
  if (!d.available) return `<h4>Where it died</h4><p class="muted">drops: unavailable (${esc(d.why ?? 'unknown')})</p>`;
  if (d.rows.length === 0) return '<h4>Where it died</h4><p class="muted">No packet was dropped in the run\'s namespaces.</p>';
  const died = whereItDied(c);
  const flag = causeFlag(c);
  const lead = `<p class="died">${died ? `<b>${esc(died)}</b>` : 'No drop above the no-fault cell (background only).'}${flag ? ` <span class="flag">⚑ ${esc(flag)}</span>` : ''}</p>`;
  const head = '<thead><tr><th scope="col">where</th><th scope="col">interface</th><th scope="col">reason</th><th scope="col">function</th><th scope="col">packets</th><th scope="col">count</th><th scope="col">excess</th><th scope="col">note</th></tr></thead>';
  const isCause = (r: (typeof d.rows)[number]) => !!c.cause && matchesCause(r, c.cause);
  const tr = (r: (typeof d.rows)[number]) => {
    const note = isCause(r) ? 'declared cause' : (r.background ?? (r.excess <= 0 ? 'no more than the no-fault cell' : ''));
    const cls = isCause(r) ? ' class="cause"' : r.background ? ' class="background"' : '';
    return `<tr${cls}><td>${esc(r.ns)}</td><td><code>${esc(r.iface || '—')}</code></td><td><code>${esc(r.reason)}</code></td><td><code>${esc(r.func)}</code></td><td>${esc(packetsOf(r))}</td><td>${esc(r.count)}</td><td>${esc(r.excess)}</td><td>${esc(note)}</td></tr>`;
  };
  // What explains the cell (and its declared cause) in the open; background and baseline-level rows folded.
  const shown = d.rows.filter((r) => isCause(r) || (r.excess > 0 && !r.background));
  const folded = d.rows.filter((r) => !shown.includes(r));
  const table = (rs: typeof d.rows) => `<table class="drops">${head}<tbody>${rs.map(tr).join('')}</tbody></table>`;
  const more = d.omitted ? `<p class="muted">${d.omitted} smaller row${d.omitted === 1 ? '' : 's'} left out; ${d.total} packets dropped in all.</p>` : `<p class="muted">${d.total} packets dropped in all${d.ranked ? ', excess over the same client\'s no-fault cell' : ''}.</p>`;
  const rest = folded.length ? `<details class="folded"><summary>${folded.length} row${folded.length === 1 ? '' : 's'} of background noise or no more than the no-fault cell</summary>${table(folded)}</details>` : '';
  return `<div class="dropsbox"><h4>Where it died</h4>${lead}${shown.length ? table(shown) : ''}${rest}${more}</div>`;
}

interface ChartData {
  target: string;
  /** Whole decades around the data, so a narrow distribution still gets labelled ticks. */
  xRange: [number, number];
  x: number[];
  series: { label: string; y: number[]; color: string; dash: boolean }[];
}

function decades(x: readonly number[]): [number, number] {
  const lo = Math.min(...x);
  const hi = Math.max(...x);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [1 / US_PER_MS, 1];
  return [10 ** Math.floor(Math.log10(lo)), 10 ** Math.max(Math.ceil(Math.log10(hi)), Math.floor(Math.log10(lo)) + 1)];
}

/** The card's chart (or why there is none) plus the data the page script draws it from. */
function chartFor(c: Cell, cells: readonly Cell[], withTarget: boolean, target: string): { html: string; data?: ChartData } {
  const ref = referenceOf(c, cells);
  const drawn: { cell: Cell; label: string; color: string; dash: boolean }[] = [
    { cell: c, label: `this cell (${c.mitigation === 'none' ? 'mitigation none' : c.mitigation})`, color: verdictColor(c.verdict), dash: false },
  ];
  if (ref) drawn.push({ cell: ref.cell, label: `${ref.role}: ${cellName(ref.cell, withTarget)}`, color: '#57606a', dash: true });
  const cdfs: Cdf[] = [];
  const problems: string[] = [];
  for (const d of drawn) {
    try {
      cdfs.push(cdfOf(d.cell));
    } catch (e) {
      problems.push(`${cellName(d.cell, withTarget)}: ${(e as Error).message}`);
    }
  }
  if (problems.length) return { html: `<p class="muted">No latency distribution: ${esc(problems.join('; '))}</p>` };
  const unrecorded = cdfs.some((x) => x.recorded < x.samples);
  const { x, ys } = alignCdfs(cdfs);
  const caption =
    `Share of lookups completed within x ms (log scale)${ref ? `, against the ${esc(ref.role)} cell` : ''}.` +
    (unrecorded ? ' Lookups that failed without a latency keep a curve below 100%.' : '');
  return {
    html: `<figure><div class="chart" id="${target}"></div><figcaption>${caption}</figcaption></figure>`,
    data: { target, xRange: decades(x), x, series: drawn.map((d, i) => ({ label: d.label, y: ys[i]!, color: d.color, dash: d.dash })) },
  };
}

function card(c: Cell, id: string, m: Matrix, withTarget: boolean): { html: string; chart?: ChartData } {
  const kinds = errorKinds(c);
  const stats = kv([
    ['expected', c.expectation],
    ['samples', `${c.samples} (${c.threads} threads, ${fmtSeconds(c.durationS)}${c.fresh ? ', fresh resolver per lookup' : ''})`],
    ['errors', `${c.errors} (${fmtPct(c.errorRate)})${kinds ? ` — ${kinds}` : ''}`],
    [`over ${fmtMs(c.thresholdMs)} ms`, String(c.overThreshold)],
    ['affected', `${fmtAffected(c)}${c.affectedInterval ? ` (${Math.round((c.confidence ?? 0.95) * 100)} % interval)` : ''}`],
    ...(c.stopped ? [['stopped', fmtStopped(c)] as [string, string]] : []),
    ['p50 / p90 / p99', `${fmtMs(c.p50Ms)} / ${fmtMs(c.p90Ms)} / ${fmtMs(c.p99Ms)} ms`],
    ['p99.9 / max', `${fmtMs(c.p999Ms)} / ${fmtMs(c.maxMs)} ms`],
    ['workload', `${c.workload} ${c.target}`],
  ]);
  const chart = chartFor(c, m.cells, withTarget, `${id}-cdf`);
  const html =
    `<section class="card" id="${id}" style="border-top-color:${verdictColor(c.verdict)}">` +
    `<h3>${badge(c.verdict)} ${esc(cellName(c, withTarget))}</h3>` +
    `<p class="reason"><b style="color:${verdictColor(c.verdict)}">${esc(c.verdict)}</b> — ${esc(c.reason || 'no reason recorded')}</p>` +
    `<div class="cols"><div>${stats}<h4>Kernel counters</h4>${countersTable(c)}</div><div>${chart.html}</div></div>${dropsTable(c)}</section>`;
  return { html, ...(chart.data ? { chart: chart.data } : {}) };
}

function environment(m: Matrix): string {
  return kv([
    ['kernel', m.kernel],
    ['provider', m.provider],
    ...hostPairs(m).map(([k, v]): [string, string] => [`host ${k}`, v]),
    ['run', m.runId],
    ['started', m.startedAt],
    ['duration', fmtSeconds(m.durationS)],
    ['quick run', m.quick ? 'yes (shortened cells)' : 'no'],
  ]);
}

const CSS = `
:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);margin:0;background:#f6f8fa}
main{max-width:1400px;margin:0 auto;padding:20px 28px 48px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 10px} h3{font-size:15px;margin:0 0 6px} h4{margin:14px 0 6px;font-size:13px}
.sub{color:var(--muted);margin:0 0 12px} .muted{color:var(--muted)}
.chips>span{display:inline-block;border:1px solid var(--line);background:#fff;border-radius:12px;padding:2px 10px;margin:0 6px 6px 0}
table{border-collapse:collapse;background:#fff}
.heatmap th,.heatmap td{border:1px solid var(--line);padding:8px 10px;text-align:left;vertical-align:middle}
.heatmap thead th{background:#eaeef2;font-weight:600} .heatmap th.mit{font-weight:400;color:var(--muted)} .heatmap th.mit b{color:var(--fg)}
.heatmap td.heat{min-width:150px} .heatmap td.heat a{text-decoration:none;display:block;font-weight:600}
.heatmap .num{display:block;font-weight:400;font-variant-numeric:tabular-nums} .heatmap td.empty{color:var(--muted);text-align:center}
.legend{color:var(--muted);font-size:12.5px;max-width:1000px}
.badge{display:inline-block;width:1.35em;height:1.35em;line-height:1.35em;border-radius:50%;color:#fff;text-align:center;font-weight:700;font-size:.85em;box-shadow:0 0 0 1.5px #fff;vertical-align:.05em}
.card{background:#fff;border:1px solid var(--line);border-top:4px solid;border-radius:6px;padding:14px 16px;margin:0 0 16px}
.reason{margin:0 0 10px} .cols{display:grid;grid-template-columns:minmax(300px,1fr) minmax(420px,1.4fr);gap:18px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
.kv th{text-align:left;font-weight:500;color:var(--muted);padding:2px 14px 2px 0;white-space:nowrap} .kv td{padding:2px 0;font-variant-numeric:tabular-nums}
.counters th,.counters td{border:1px solid var(--line);padding:3px 8px;font-variant-numeric:tabular-nums;text-align:right} .counters th[scope=row]{text-align:left}
.counters thead th{background:#f6f8fa;text-align:center;white-space:nowrap} .counters tr.nonzero td{font-weight:600}
details.folded{margin-top:6px} details.folded summary{color:var(--muted);cursor:pointer}
.dropsbox{margin-top:10px} .drops{font-size:13px} .drops th,.drops td{border:1px solid var(--line);padding:3px 8px;white-space:nowrap;font-variant-numeric:tabular-nums;text-align:left} .drops thead th{background:#f6f8fa}
.drops tr.cause td{font-weight:600;background:#fff8c5} .drops tr.background td{color:var(--muted)} .died{margin:0 0 6px} .flag{color:#9a6700}
figure{margin:0} figcaption{color:var(--muted);font-size:12.5px;margin-top:4px} .chart{width:100%;min-height:300px}
.uplot .u-legend{font-size:12.5px;text-align:left}
`;

/** Draws every CDF with uPlot: log x (distr 3), stepped lines because a CDF is a step function. */
const PAGE_SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('vx-data').textContent);
  function ms(v) { return v == null ? '–' : v >= 1000 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(3); }
  function tick(v) { return v >= 1000 ? Math.round(v).toLocaleString('en-US') : String(+v.toPrecision(v >= 1 ? 3 : 2)); }
  function pct(v) { return v == null ? '–' : (v * 100).toFixed(v > 0.999 || v < 0.001 ? 2 : 1) + '%'; }
  // Label 1-2-5 ticks over a range of two decades or less, only powers of ten over wider ones.
  function labelled(range) {
    var steps = Math.log10(range[1] / range[0]) <= 2 ? [1, 2, 5] : [1];
    return function (u, splits) {
      return splits.map(function (v) {
        var mantissa = Math.round(v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9)));
        return steps.indexOf(mantissa) >= 0 ? v : null;
      });
    };
  }
  var stepped = uPlot.paths.stepped({ align: 1 });
  data.charts.forEach(function (ch) {
    var el = document.getElementById(ch.target);
    var series = [{ label: 'latency ms', value: function (u, v) { return ms(v); } }].concat(ch.series.map(function (s) {
      return { label: s.label, stroke: s.color, width: 2, dash: s.dash ? [6, 4] : undefined, paths: stepped, points: { show: false },
               value: function (u, v) { return pct(v); } };
    }));
    var opts = {
      width: Math.max(360, el.clientWidth), height: 260,
      scales: { x: { time: false, distr: 3, log: 10, range: function () { return ch.xRange; } }, y: { range: [0, 1] } },
      axes: [
        { label: 'latency (ms, log scale)', filter: labelled(ch.xRange), values: function (u, vals) { return vals.map(function (v) { return v == null ? '' : tick(v); }); } },
        { label: 'lookups completed', values: function (u, vals) { return vals.map(function (v) { return Math.round(v * 100) + '%'; }); }, size: 56 }
      ],
      series: series,
      cursor: { drag: { x: true, y: false } }
    };
    new uPlot(opts, [ch.x].concat(ch.series.map(function (s) { return s.y; })), el);
  });
})();
`;

/** One self-contained page (no network): heat map, per-cell distributions and counters, environment. */
export function renderHtml(m: Matrix): string {
  const withTarget = hasManyTargets(m.cells);
  const ids = new Map(m.cells.map((c, i): [Cell, string] => [c, `cell-${i + 1}`]));
  const cards = m.cells.map((c) => card(c, ids.get(c)!, m, withTarget));
  const charts = cards.flatMap((c) => (c.chart ? [c.chart] : []));
  const head = headline(m);
  const n = countVerdicts(m.cells);
  const chips = VERDICTS.map((v) => `<span>${badge(v)} ${n[v]} ${esc(v)}</span>`).join('');
  const title = `vxchaos · ${m.suite}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — ${esc(head.text)}</title>
<style>${inline(asset('uplot/dist/uPlot.min.css'), 'style')}</style>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${badge(head.verdict)} ${esc(title)}</h1>
<p class="sub">${esc(head.text)}${m.description ? ` — ${esc(m.description.trim())}` : ''}</p>
<div class="chips">${chips}<span>provider ${esc(m.provider)}</span><span>kernel ${esc(m.kernel)}</span><span>${esc(fmtSeconds(m.durationS))}${m.quick ? ', quick run' : ''}</span></div>
<h2>Matrix</h2>
${heatMap(m, ids)}
<h2>Cells</h2>
${cards.map((c) => c.html).join('\n')}
<h2>Environment</h2>
${environment(m)}
</main>
<script type="application/json" id="vx-data">${scriptJson({ charts })}</script>
<script>${inline(asset('uplot/dist/uPlot.iife.min.js'), 'script')}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
