import type { Verdict } from '../report/matrix.ts';
import { cellDrops, explainingRows, type CellDrops } from './cell-drops.ts';
import type { DropRow, Drops, RankedDropRow } from './drops.ts';

/**
 * The drop a suite cell declares as the mechanism of its symptom (suites/*.yaml `cause`): a kernel drop
 * reason, optionally where (a node or pod of the run, or `fabric`), on which interface, in which function.
 */
export interface Cause {
  reason: string;
  where?: string;
  iface?: string;
  func?: string;
}

/** What the check found, kept in the cell beside the declaration. */
export interface CauseCheck extends Cause {
  /** Packets the declared cause dropped during the measurement; absent when drops were unavailable. */
  dropped?: number;
}

export function causeText(c: Cause): string {
  const at = [c.where, c.iface].filter(Boolean).join(' ');
  return `${c.reason}${at ? ` on ${at}` : ''}${c.func ? ` (${c.func})` : ''}`;
}

export function matchesCause(row: DropRow, c: Cause): boolean {
  return row.reason === c.reason && (!c.where || row.ns === c.where) && (!c.iface || row.iface === c.iface) && (!c.func || row.func === c.func);
}

/** `64 × OTHERHOST on node-3 flannel.1 (ip_rcv_core)`. */
export function rowText(r: DropRow): string {
  return `${r.count} × ${r.reason} on ${[r.ns, r.iface].filter(Boolean).join(' ')} (${r.func})`;
}

export interface CheckedCell {
  verdict: Verdict;
  reason: string;
  drops: CellDrops;
  cause?: CauseCheck;
  /** A clean cell whose declared cause still dropped packets: how many (the verdict stands, the cell is flagged). */
  causeStillDropping?: number;
}

/**
 * Checks a judged cell against its drops (issue 11, mechanism-checked verdicts). A `reproduces` cell that
 * passed although its declared cause dropped nothing fails: its symptom came from elsewhere. A `clean` cell
 * whose cause still drops keeps its verdict and is flagged. Without drops the verdict stands and says so.
 */
export function checkCause(
  cause: Cause | undefined,
  expect: 'reproduces' | 'clean',
  judged: { verdict: Verdict; reason: string },
  drops: Drops,
  baseline: readonly DropRow[] | undefined,
): CheckedCell {
  const field = cellDrops(drops, baseline);
  // Nothing was judged (a dry run): there is no symptom to explain.
  if (!cause || judged.verdict === 'skipped') return { ...judged, drops: field };
  if (!drops.available) {
    return { ...judged, reason: `${judged.reason}; cause not checked: drops unavailable (${drops.why ?? 'unknown'})`, drops: field, cause: { ...cause } };
  }
  if (drops.reasons === false) {
    return { ...judged, reason: `${judged.reason}; cause not checked: this kernel names no drop reasons (before 5.17)`, drops: field, cause: { ...cause } };
  }
  // All rows, not only the kept top: a cause is found wherever it ranks.
  const all: RankedDropRow[] = cellDrops(drops, baseline, Number.MAX_SAFE_INTEGER).rows;
  const dropped = all.filter((r) => matchesCause(r, cause)).reduce((s, r) => s + r.count, 0);
  const check: CauseCheck = { ...cause, dropped };
  if (expect === 'reproduces') {
    if (judged.verdict !== 'pass') return { ...judged, drops: field, cause: check };
    if (dropped > 0) return { ...judged, reason: `${judged.reason}; cause seen: ${dropped} × ${causeText(cause)}`, drops: field, cause: check };
    const other = explainingRows(all)[0];
    const why = other ? `reproduced, other cause: ${rowText(other)}` : 'reproduced, no drop explains it';
    return { verdict: 'fail', reason: `${why} (declared ${causeText(cause)}: none); ${judged.reason}`, drops: field, cause: check };
  }
  if (dropped > 0) {
    return {
      ...judged,
      reason: `${judged.reason}; flagged: the fault's cause still dropped ${dropped} × ${causeText(cause)}`,
      drops: field,
      cause: check,
      causeStillDropping: dropped,
    };
  }
  return { ...judged, drops: field, cause: check };
}
