import { fmtAffected } from './markdown.ts';
import { causeFlag, dropsUnavailableNote, whereItDied } from './drops-text.ts';
import type { Cell, Matrix } from './matrix.ts';

const pad = (s: string, n: number, right = false) => (right ? s.padStart(n) : s.padEnd(n));

const label = (x: Cell) => `${x.name ? `${x.client} (${x.name})` : x.client} × ${x.fault === 'none' ? 'none' : `${x.fault}(${x.faultMode})`} × ${x.mitigation}`;

/** The matrix as a plain table for a terminal or a CI log. */
export function renderTerminal(m: Matrix, color = false): string {
  const c = (code: number, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const head = ['client', 'fault(mode)', 'mitigation', 'samples', 'affected', 'errors', 'p50 ms', 'p99 ms', 'max ms', `>${m.cells[0]?.thresholdMs ?? 1000}ms`, 'stopped', 'expect', 'verdict'];
  const rows = m.cells.map((x) => [
    x.name ? `${x.client} (${x.name})` : x.client,
    x.fault === 'none' ? 'none' : `${x.fault}(${x.faultMode})`,
    x.mitigation,
    String(x.samples),
    fmtAffected(x),
    Object.entries(x.errorsByKind).map(([k, v]) => `${k}:${v}`).join(' ') || '0',
    x.p50Ms.toFixed(2),
    x.p99Ms.toFixed(1),
    x.maxMs.toFixed(1),
    String(x.overThreshold),
    x.stopped ? `${x.stopped.by === 'settled' ? 'settled' : 'cap'} ${(x.stopped.afterMs / 1000).toFixed(1)} s` : '',
    x.expectation,
    x.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([3, 4, 6, 7, 8, 9]);
  const line = (r: string[]) => r.map((v, i) => pad(v, widths[i]!, numeric.has(i))).join('  ');
  const verdictColor = (v: string) => (v === 'pass' ? 32 : v === 'fail' || v === 'error' ? 31 : v === 'skipped' ? 2 : 33);
  const out = [
    `${m.suite} on ${m.provider} — kernel ${m.kernel} — run ${m.runId}${m.quick ? ' (quick)' : ''}`,
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => {
      const l = line(r);
      return color ? l.replace(new RegExp(`${r[12]}$`), c(verdictColor(r[12]!), r[12]!)) : l;
    }),
  ];
  const bad = m.cells.filter((x) => x.verdict !== 'pass');
  if (bad.length) {
    out.push('', 'Cells that did not meet their expectation:');
    for (const x of bad) out.push(`  ${label(x)}: ${x.verdict} — ${x.reason}`);
  }
  out.push(...whereItDiedSection(m, label));
  const counters = m.cells.filter((x) => Object.values(x.counters).some((v) => v !== 0));
  if (counters.length) {
    out.push('', 'Counters (non-zero, summed over nodes):');
    for (const x of counters) {
      const kv = Object.entries(x.counters).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(' ');
      out.push(`  ${label(x)}: ${kv}`);
    }
  }
  return out.join('\n');
}

/** One "where it died" line per cell whose drops explain something (kernel drop reasons, above the no-fault cell). */
function whereItDiedSection(m: Matrix, name: (c: Cell) => string): string[] {
  const none = dropsUnavailableNote(m.cells);
  if (none) return ['', none];
  const lines = m.cells.flatMap((x) => {
    const died = whereItDied(x);
    const flag = causeFlag(x);
    if (!died && !flag) return [];
    return [`  ${name(x)}: ${died ?? 'no drop above the no-fault cell'}${flag ? ` [flagged: ${flag}]` : ''}`];
  });
  return lines.length ? ['', 'Where it died (kernel drop reasons, above the no-fault cell):', ...lines] : [];
}
