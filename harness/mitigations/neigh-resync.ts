import type { Mitigation } from './mitigation.ts';

const VXLAN_DEV = 'flannel.1';

/**
 * Rewrite every peer's neighbour and FDB entries from the VtepMAC leases (what a resync of flanneld does).
 * Both are needed: flannel.1 is nolearning, so a fixed ARP entry alone still sends frames to the old MAC's
 * FDB destination. FDB entries of MACs no lease carries are removed.
 */
export const neighResync: Mitigation = {
  name: 'neigh-resync',
  description: 'rewrite neighbour + FDB entries on every node from the VtepMAC leases',
  async apply(ctx) {
    const leases = await ctx.cluster.flannel.leases();
    const macs = new Set(leases.map((l) => l.vtepMAC));
    let neighFixed = 0;
    let fdbRemoved = 0;
    for (const node of ctx.cluster.nodes) {
      const peers = leases.filter((l) => l.node !== node.name);
      const current = JSON.parse((await node.exec(['ip', '-j', 'neigh', 'show', 'dev', VXLAN_DEV])).stdout || '[]') as { dst: string; lladdr?: string }[];
      for (const l of peers) {
        const vtepIP = l.subnet.split('/')[0]!;
        if (current.find((n) => n.dst === vtepIP)?.lladdr !== l.vtepMAC) neighFixed++;
        await node.exec(['ip', 'neigh', 'replace', vtepIP, 'lladdr', l.vtepMAC, 'dev', VXLAN_DEV, 'nud', 'permanent']);
        await node.exec(['bridge', 'fdb', 'replace', l.vtepMAC, 'dev', VXLAN_DEV, 'self', 'permanent', 'dst', l.publicIP]);
      }
      const fdb = JSON.parse((await node.exec(['bridge', '-j', 'fdb', 'show', 'dev', VXLAN_DEV])).stdout || '[]') as { mac: string; dst?: string }[];
      for (const e of fdb.filter((x) => x.dst && !macs.has(x.mac))) {
        await node.exec(['bridge', 'fdb', 'del', e.mac, 'dev', VXLAN_DEV, 'self', 'dst', e.dst!], { nothrow: true });
        fdbRemoved++;
      }
    }
    ctx.log(`neigh-resync: ${neighFixed} neighbour entries fixed, ${fdbRemoved} stale FDB entries removed`);
    return { counters: { 'resync.neighFixed': neighFixed, 'resync.fdbRemoved': fdbRemoved }, revert: async () => undefined };
  },
};
