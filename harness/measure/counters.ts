import type { ClusterNode } from '../providers/provider.ts';

export type Counters = Record<string, number>;

/** `conntrack -S`: one line per CPU of key=value pairs; summed over CPUs. */
export function parseConntrackStats(text: string): Counters {
  const out: Counters = {};
  for (const line of text.split('\n')) {
    for (const m of line.matchAll(/(\w+)=(\d+)/g)) {
      if (m[1] === 'cpu') continue;
      out[`conntrack.${m[1]}`] = (out[`conntrack.${m[1]}`] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

/** /proc/net/snmp: header line + value line per protocol. */
export function parseSnmp(text: string, wanted: Record<string, readonly string[]>): Counters {
  const out: Counters = {};
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const [proto, ...keys] = lines[i]!.split(/\s+/);
    const [proto2, ...vals] = lines[i + 1]!.split(/\s+/);
    if (!proto || proto !== proto2) continue;
    const name = proto.replace(':', '');
    for (const k of wanted[name] ?? []) {
      const idx = keys.indexOf(k);
      if (idx >= 0) out[`${name.toLowerCase()}.${k}`] = Number(vals[idx]);
    }
    i++;
  }
  return out;
}

const SNMP: Record<string, readonly string[]> = {
  Udp: ['InErrors', 'RcvbufErrors', 'InCsumErrors'],
  Tcp: ['RetransSegs', 'AttemptFails'],
};

/** The kernel counters of one node (its namespace), read through the seam. */
export async function readCounters(node: ClusterNode): Promise<Counters> {
  const [ct, snmp] = await Promise.all([node.exec(['conntrack', '-S'], { nothrow: true }), node.exec(['cat', '/proc/net/snmp'])]);
  return { ...parseConntrackStats(ct.stdout), ...parseSnmp(snmp.stdout, SNMP) };
}

export async function snapshot(nodes: readonly ClusterNode[]): Promise<Record<string, Counters>> {
  const entries = await Promise.all(nodes.map(async (n) => [n.name, await readCounters(n)] as const));
  return Object.fromEntries(entries);
}

/** after − before per node, and the sum over nodes. */
export function delta(before: Record<string, Counters>, after: Record<string, Counters>): { total: Counters; byNode: Record<string, Counters> } {
  const total: Counters = {};
  const byNode: Record<string, Counters> = {};
  for (const [node, a] of Object.entries(after)) {
    const b = before[node] ?? {};
    byNode[node] = {};
    for (const [k, v] of Object.entries(a)) {
      const d = v - (b[k] ?? 0);
      byNode[node]![k] = d;
      total[k] = (total[k] ?? 0) + d;
    }
  }
  return { total, byNode };
}
