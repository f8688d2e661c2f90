import { z } from 'zod';
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
const ChecksumParams = z.strictObject({
  /** The sending node (default: the client's node, where node → Service traffic starts). */
  node: z.string().optional(),
});

export const checksumOffload: Fault<z.output<typeof ChecksumParams>> = {
  name: 'checksum-offload',
  description: 'flannel.1 tx checksum on + historic KUBE-POSTROUTING (--random-fully, mark kept) + real underlay checksums: double SNAT of VXLAN (seed 001)',
  seeds: ['001'],
  modes: ['native'],
  defaultMode: 'native',
  params: ChecksumParams,
  requires: () => [{ capability: 'ownsKubeProxyChains', because: 'needs the historic KUBE-POSTROUTING held in place; a real kube-proxy rewrites the chain on every sync' }],
  async apply(ctx) {
    // The sending node is where the client lives (node → Service traffic starts there).
    const node = ctx.cluster.node(ctx.params.node ?? ctx.client.node);
    const port = ctx.cluster.topology.vxlan.port ?? VXLAN_PORT_DEFAULT;
    const eth0Tx = await feature(node, 'eth0', 'tx-checksumming');
    await node.exec(['ethtool', '-K', 'eth0', 'tx', 'off']);
    ctx.undo.push(`${node.name}: eth0 tx ${eth0Tx}`, () => node.exec(['ethtool', '-K', 'eth0', 'tx', eth0Tx]));
    const vxlanTx = await feature(node, 'flannel.1', 'tx-checksum-ip-generic');
    await node.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', 'on']);
    ctx.undo.push(`${node.name}: flannel.1 tx-checksum-ip-generic ${vxlanTx}`, () => node.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', vxlanTx]));
    const postrouting = await saveChain(node);
    await node.exec(['iptables-restore', '-w', '5', '--noflush'], { input: postroutingOnly('historic', true) });
    ctx.undo.push(`${node.name}: KUBE-POSTROUTING as found`, () => restoreChain(node, postrouting));
    ctx.log(`${node.name}: eth0 tx off, flannel.1 tx-checksum-ip-generic on, KUBE-POSTROUTING historic (--random-fully)`);
    return {
      counters: {},
      finalCounters: async () => ({ 'conntrack.vxlanSrcNat': await vxlanSrcNatFlows(node, port) }),
    };
  },
};
