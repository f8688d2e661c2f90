import { z } from 'zod';
import { VxError } from '../errors.ts';
import type { Cluster, ClusterNode, VtepLease } from '../providers/provider.ts';
import type { Fault, FaultContext } from './fault.ts';

const MacChurnParams = z.strictObject({
  /** The node whose flanneld restarts (default: a DNS node other than the client's). */
  node: z.string().optional(),
});
type MacChurnParams = z.output<typeof MacChurnParams>;

const VXLAN_DEV = 'flannel.1';

/** Peers whose neighbour (ARP) or FDB entry for `lease` does not carry its current VtepMAC. */
export async function stalePeers(cluster: Cluster, lease: VtepLease): Promise<{ neigh: number; fdb: number }> {
  const vtepIP = lease.subnet.split('/')[0]!;
  let neigh = 0;
  let fdb = 0;
  for (const peer of cluster.nodes.filter((n) => n.name !== lease.node)) {
    const n = JSON.parse((await peer.exec(['ip', '-j', 'neigh', 'show', 'dev', VXLAN_DEV, 'to', vtepIP])).stdout || '[]') as { lladdr?: string }[];
    if (n[0]?.lladdr !== lease.vtepMAC) neigh++;
    const f = JSON.parse((await peer.exec(['bridge', '-j', 'fdb', 'show', 'dev', VXLAN_DEV])).stdout || '[]') as { mac: string; dst?: string }[];
    if (!f.some((e) => e.mac === lease.vtepMAC && e.dst === lease.publicIP)) fdb++;
  }
  return { neigh, fdb };
}

/** The node whose replica the fault takes away: params.node, else a DNS node other than the client's. */
function victim(ctx: FaultContext<MacChurnParams>): ClusterNode {
  const name = ctx.params.node;
  if (typeof name === 'string') return ctx.cluster.node(name);
  const dnsNodes = ctx.cluster.dnsPods.map((p) => p.node).filter((n) => n !== ctx.client.node);
  if (!dnsNodes[0]) throw new VxError('E_FAULT', 'mac-churn needs a DNS replica on a node other than the client\'s');
  return ctx.cluster.node(dnsNodes[0]);
}

/** Time until the client reaches the victim's DNS replica directly (its pod IP) again. */
async function timeToRecover(ctx: FaultContext<MacChurnParams>, node: string, since: number, limitMs: number): Promise<number> {
  const pod = ctx.cluster.dnsPods.find((p) => p.node === node);
  if (!pod) return -1;
  const name = `kube-dns.kube-system.svc.${ctx.cluster.topology.dns.domain}`;
  while (Date.now() - since < limitMs) {
    const r = await ctx.client.exec(['dig', '+time=1', '+tries=1', '+short', `@${pod.ip}`, name], { nothrow: true, timeoutMs: 5000 });
    if (r.exitCode === 0 && r.stdout.trim()) return Date.now() - since;
    await new Promise((res) => setTimeout(res, 20));
  }
  return -1;
}

/**
 * Seed 002: flanneld on one node restarts and flannel.1 comes back with a new MAC (VtepMAC). Peers either
 * keep their old PERMANENT neighbour and FDB entries (`stale-peers`, the incident: an old or stopped
 * flanneld) or pick the new lease up (`live-peers`, current flannel: the cell reports time to recover).
 */
export const macChurn: Fault<MacChurnParams> = {
  name: 'mac-churn',
  description: 'flanneld restart on a DNS node: flannel.1 gets a new VtepMAC; peers keep stale ARP/FDB (stale-peers) or resync (live-peers)',
  seeds: ['002'],
  modes: ['stale-peers', 'live-peers'],
  defaultMode: 'stale-peers',
  params: MacChurnParams,
  async apply(ctx, mode) {
    const node = victim(ctx);
    const peers = ctx.cluster.nodes.filter((n) => n.name !== node.name).map((n) => n.name);
    const before = (await ctx.cluster.flannel.leases()).find((l) => l.node === node.name);
    if (mode === 'stale-peers') {
      await ctx.cluster.flannel.freeze(peers);
      // Thawed peers pick up the victim's current lease: their neighbour and FDB entries are right again.
      ctx.undo.push(`thaw flanneld on ${peers.join(', ')}`, () => ctx.cluster.flannel.thaw(peers));
    }
    const t0 = Date.now();
    await node.exec(['ip', 'link', 'del', VXLAN_DEV]);
    // If the restart below fails, the node would stay without flannel.1: restart it once more on undo.
    ctx.undo.push(`${node.name}: flannel.1 back`, async () => {
      const link = await node.exec(['ip', 'link', 'show', VXLAN_DEV], { nothrow: true });
      if (link.exitCode !== 0) await ctx.cluster.flannel.restart(node.name);
    });
    await ctx.cluster.flannel.restart(node.name);
    const after = (await ctx.cluster.flannel.leases()).find((l) => l.node === node.name);
    if (!before || !after) throw new VxError('E_FAULT', `no VtepMAC lease for ${node.name}`);
    ctx.log(`${node.name}: flannel.1 ${before.vtepMAC} → ${after.vtepMAC}`);
    const counters: Record<string, number> = { 'flannel.vtepMacChanged': before.vtepMAC !== after.vtepMAC ? 1 : 0 };
    if (mode === 'live-peers') counters['flannel.recoveryMs'] = await timeToRecover(ctx, node.name, t0, 15_000);
    const stale = await stalePeers(ctx.cluster, after);
    counters['neigh.stalePeers'] = stale.neigh;
    counters['fdb.stalePeers'] = stale.fdb;
    return { counters };
  },
};
