import { noParams } from '../faults/fault.ts';
import type { Mitigation } from './mitigation.ts';

const VXLAN_DEV = 'flannel.1';

interface Neigh {
  dst: string;
  lladdr?: string;
}
interface Fdb {
  mac: string;
  dst?: string;
}

/**
 * Rewrite every peer's neighbour and FDB entries from the VtepMAC leases (what a resync of flanneld does).
 * Both are needed: flannel.1 is nolearning, so a fixed ARP entry alone still sends frames to the old MAC's
 * FDB destination. FDB entries of MACs no lease carries are removed. Undo puts back the entries found.
 */
export const neighResync: Mitigation = {
  name: 'neigh-resync',
  description: 'rewrite neighbour + FDB entries on every node from the VtepMAC leases',
  params: noParams,
  async apply(ctx) {
    const leases = await ctx.cluster.flannel.leases();
    const macs = new Set(leases.map((l) => l.vtepMAC));
    let neighFixed = 0;
    let fdbRemoved = 0;
    for (const node of ctx.cluster.nodes) {
      const peers = leases.filter((l) => l.node !== node.name);
      const neigh = JSON.parse((await node.exec(['ip', '-j', 'neigh', 'show', 'dev', VXLAN_DEV])).stdout || '[]') as Neigh[];
      const fdbFound = JSON.parse((await node.exec(['bridge', '-j', 'fdb', 'show', 'dev', VXLAN_DEV])).stdout || '[]') as Fdb[];
      for (const l of peers) {
        const vtepIP = l.subnet.split('/')[0]!;
        const found = neigh.find((n) => n.dst === vtepIP)?.lladdr;
        if (found !== l.vtepMAC) {
          neighFixed++;
          await node.exec(['ip', 'neigh', 'replace', vtepIP, 'lladdr', l.vtepMAC, 'dev', VXLAN_DEV, 'nud', 'permanent']);
          ctx.undo.push(`${node.name}: neighbour ${vtepIP} as found`, () =>
            found
              ? node.exec(['ip', 'neigh', 'replace', vtepIP, 'lladdr', found, 'dev', VXLAN_DEV, 'nud', 'permanent'])
              : node.exec(['ip', 'neigh', 'del', vtepIP, 'dev', VXLAN_DEV], { nothrow: true }),
          );
        }
        if (!fdbFound.some((e) => e.mac === l.vtepMAC && e.dst === l.publicIP)) {
          await node.exec(['bridge', 'fdb', 'replace', l.vtepMAC, 'dev', VXLAN_DEV, 'self', 'permanent', 'dst', l.publicIP]);
          ctx.undo.push(`${node.name}: no FDB entry ${l.vtepMAC}`, () => node.exec(['bridge', 'fdb', 'del', l.vtepMAC, 'dev', VXLAN_DEV, 'self', 'dst', l.publicIP], { nothrow: true }));
        }
      }
      for (const e of fdbFound.filter((x) => x.dst && !macs.has(x.mac))) {
        await node.exec(['bridge', 'fdb', 'del', e.mac, 'dev', VXLAN_DEV, 'self', 'dst', e.dst!], { nothrow: true });
        ctx.undo.push(`${node.name}: FDB entry ${e.mac} back`, () => node.exec(['bridge', 'fdb', 'append', e.mac, 'dev', VXLAN_DEV, 'self', 'permanent', 'dst', e.dst!]));
        fdbRemoved++;
      }
    }
    ctx.log(`neigh-resync: ${neighFixed} neighbour entries fixed, ${fdbRemoved} stale FDB entries removed`);
    return { counters: { 'resync.neighFixed': neighFixed, 'resync.fdbRemoved': fdbRemoved } };
  },
};
