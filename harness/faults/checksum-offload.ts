import { VxError } from '../errors.ts';
import { postroutingOnly, restoreChain, saveChain } from '../kube/postrouting.ts';
import type { ClusterNode } from '../providers/provider.ts';
import type { Fault } from './fault.ts';

const VXLAN_PORT_DEFAULT = 8472;

async function feature(node: ClusterNode, dev: string, name: string): Promise<string> {
  const out = (await node.exec(['ethtool', '-k', dev])).stdout;
  const m = new RegExp(`^\\s*${name}: (on|off)`, 'm').exec(out);
  if (!m) throw new VxError('E_FAULT', `${node.name}: ethtool -k ${dev} has no ${name}`);
  return m[1]!;
}

/** Outer VXLAN flows (UDP to the VXLAN port) that conntrack shows as source-NATed: the second SNAT. */
export async function vxlanSrcNatFlows(node: ClusterNode, port: number): Promise<number> {
  const r = await node.exec(['conntrack', '-L', '-p', 'udp', '--dport', String(port), '--src-nat'], { nothrow: true });
  return r.stdout.split('\n').filter((l) => l.startsWith('udp')).length;
}

/**
 * Seed 001: a node connects to a Service whose endpoint is on another node. kube-proxy marks the packet
 * 0x4000 (source outside the pod network), the mark survives VXLAN encapsulation, and the historic
 * KUBE-POSTROUTING masquerades the outer UDP packet too (--random-fully). With the VXLAN checksum
 * computed in software on flannel.1 and real checksums on the underlay, the rewritten outer packet
 * arrives with a bad UDP checksum: the receiver drops it (UdpInCsumErrors) and the first SYN of every
 * new connection is lost — 1 s on current kernels, 63 s on old ones. `native`: only the trigger; this
 * kernel decides whether the bug shows.
 */
export const checksumOffload: Fault = {
  name: 'checksum-offload',
  description: 'flannel.1 tx checksum on + historic KUBE-POSTROUTING (--random-fully, mark kept) + real underlay checksums: double SNAT of VXLAN (seed 001)',
  seeds: ['001'],
  modes: ['native'],
  defaultMode: 'native',
  async apply(ctx, mode) {
    if (mode !== 'native') throw new VxError('E_FAULT_MODE', `checksum-offload has modes native (got "${mode}")`);
    // The sending node is where the client lives (node → Service traffic starts there).
    const node = ctx.cluster.node(typeof ctx.params.node === 'string' ? ctx.params.node : ctx.client.node);
    const port = ctx.cluster.topology.vxlan.port ?? VXLAN_PORT_DEFAULT;
    const saved = {
      eth0Tx: await feature(node, 'eth0', 'tx-checksumming'),
      vxlanTx: await feature(node, 'flannel.1', 'tx-checksum-ip-generic'),
      postrouting: await saveChain(node),
    };
    await node.exec(['ethtool', '-K', 'eth0', 'tx', 'off']);
    await node.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', 'on']);
    await node.exec(['iptables-restore', '-w', '5', '--noflush'], { input: postroutingOnly('historic', true) });
    ctx.log(`${node.name}: eth0 tx off, flannel.1 tx-checksum-ip-generic on, KUBE-POSTROUTING historic (--random-fully)`);
    return {
      counters: {},
      finalCounters: async () => ({ 'conntrack.vxlanSrcNat': await vxlanSrcNatFlows(node, port) }),
      revert: async () => {
        await restoreChain(node, saved.postrouting);
        await node.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', saved.vxlanTx]);
        await node.exec(['ethtool', '-K', 'eth0', 'tx', saved.eth0Tx]);
      },
    };
  },
};
