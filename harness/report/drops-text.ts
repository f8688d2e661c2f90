import { causeText } from '../measure/cause.ts';
import { explainingRows } from '../measure/cell-drops.ts';
import type { DropRow } from '../measure/drops.ts';
import type { Cell } from './matrix.ts';

/** What kind of packets a row counts, from its ports: "DNS packets", "TCP :80 packets in VXLAN", "ICMPV6 packets". */
export function packetsOf(r: DropRow): string {
  const inner = r.innerProto !== undefined;
  const proto = inner ? r.innerProto! : r.proto;
  const port = inner ? (r.innerPort ?? 0) : r.port;
  const kind = port === 53 ? 'DNS' : r.l3 === 'arp' ? 'ARP' : proto ? `${proto.toUpperCase()}${port ? ` :${port}` : ''}` : r.l3 || 'unknown';
  return `${kind} packets${inner ? ' in VXLAN' : ''}`;
}

const one = (n: number, what: string) => (n === 1 ? what.replace(/ packets/, ' packet') : what);

/** `64 DNS packets died on node-3 flannel.1: OTHERHOST (ip_rcv_core)`. */
export function diedText(r: DropRow): string {
  return `${r.count} ${one(r.count, packetsOf(r))} died on ${[r.ns, r.iface].filter(Boolean).join(' ')}: ${r.reason} (${r.func})`;
}

/**
 * The cell's "where it died" line: its largest drop above the baseline that is not background noise, plus
 * how many other such rows there are; undefined when nothing explains anything (or drops were not measured).
 */
export function whereItDied(c: Pick<Cell, 'drops'>): string | undefined {
  if (!c.drops?.available) return undefined;
  const [top, ...rest] = explainingRows(c.drops.rows);
  if (!top) return undefined;
  return `${diedText(top)}${rest.length ? ` (+${rest.length} more drop row${rest.length === 1 ? '' : 's'})` : ''}`;
}

/** Flags a reader should see beside the line: a clean cell whose fault's cause still drops. */
export function causeFlag(c: Pick<Cell, 'cause' | 'causeStillDropping'>): string | undefined {
  if (!c.causeStillDropping || !c.cause) return undefined;
  return `the fault's cause still dropped ${c.causeStillDropping} × ${causeText(c.cause)}`;
}

/** One line for a run whose drops were never available (the same why in every cell), else undefined. */
export function dropsUnavailableNote(cells: readonly Pick<Cell, 'drops'>[]): string | undefined {
  const measured = cells.filter((c) => c.drops);
  if (measured.length === 0 || measured.some((c) => c.drops!.available)) return undefined;
  const whys = [...new Set(measured.map((c) => c.drops!.why ?? 'unknown'))];
  return `drops: unavailable (${whys.join('; ')})`;
}
