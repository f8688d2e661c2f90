import type { Cluster } from '../providers/provider.ts';
import { dropsOf, dropsUnavailable, rankByExcess, type DropRow, type Drops, type RankedDropRow } from './drops.ts';

/** Rows a cell keeps in matrix.json: the top of the ranking (what the fault added), the rest counted. */
export const CELL_DROP_ROWS = 20;

/** A cell's `drops` field (matrix.json schema v1 addition). */
export interface CellDrops {
  available: boolean;
  /** Why drops are unavailable (no BTF, not root, not built, no tracer on this provider, …). */
  why?: string;
  /** Packets dropped in the run's namespaces during the measurement, all rows. */
  total: number;
  /** Ranked by excess over the same client's no-fault cell; background noise labelled and sunk. */
  rows: RankedDropRow[];
  /** Rows left out of `rows` (beyond CELL_DROP_ROWS). */
  omitted?: number;
  /** Whether a baseline (the same client's no-fault cell) was there to rank against. */
  ranked?: boolean;
  /** False when the kernel names no drop reasons (before 5.17). */
  reasons?: boolean;
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

/**
 * Starts one cell's drop sample: a snapshot now, the difference at end(). Never throws: a provider without a
 * tracer, or a tracer that died, gives `available: false` with why.
 */
export async function startDropSample(cluster: Pick<Cluster, 'drops' | 'provider'>): Promise<{ end(): Promise<Drops> }> {
  const d = cluster.drops;
  const none = (why: string) => ({ end: async () => dropsUnavailable(why) });
  if (!d) return none(`the ${cluster.provider} provider has no drop tracer`);
  if (!d.available) return none(d.why ?? 'the drop tracer is not running');
  let before;
  try {
    before = await d.snapshot();
  } catch (e) {
    return none(firstLine(e));
  }
  return {
    end: async () => {
      try {
        const rows = d.delta(before, await d.snapshot());
        return { ...dropsOf(rows), ...(d.reasons === false ? { reasons: false } : {}) };
      } catch (e) {
        return dropsUnavailable(firstLine(e));
      }
    },
  };
}

/** The cell's field: every row ranked against the baseline's rows, the top CELL_DROP_ROWS kept. */
export function cellDrops(drops: Drops, baseline: readonly DropRow[] | undefined, keep = CELL_DROP_ROWS): CellDrops {
  if (!drops.available) return { available: false, ...(drops.why ? { why: drops.why } : {}), total: 0, rows: [] };
  const ranked = rankByExcess(drops.rows, baseline ?? []);
  return {
    available: true,
    total: drops.total,
    rows: ranked.slice(0, keep),
    ...(ranked.length > keep ? { omitted: ranked.length - keep } : {}),
    ranked: baseline !== undefined,
    ...(drops.reasons === false ? { reasons: false } : {}),
  };
}

/** The rows that explain a cell: above its baseline and not background noise, largest excess first. */
export function explainingRows(rows: readonly RankedDropRow[]): RankedDropRow[] {
  return rows.filter((r) => r.excess > 0 && !r.background);
}
