import type { NodeSpec, Topology } from '../../config/topology.ts';
import { NETNS_PREFIX } from './ledger.ts';
import { NetnsNode, NetnsTarget, type NetnsContext } from './node.ts';

export const UNDERLAY_BRIDGE = 'br-underlay';

export function netnsName(runId: string, role: string): string {
  return `${NETNS_PREFIX}${runId}-${role}`;
}

/** `ip -n NS -batch -`: one process for many link/addr/route changes. */
export async function ipBatch(ctx: NetnsContext, netns: string, lines: readonly string[]): Promise<void> {
  await ctx.host.run(['ip', '-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** A fresh namespace: recorded before it exists, loopback up, and the sysctls a Kubernetes node sets. */
export async function addNamespace(ctx: NetnsContext, netns: string, sysctls: readonly string[]): Promise<void> {
  await ctx.ledger.record({ kind: 'netns', name: netns });
  await ctx.host.run(['ip', 'netns', 'add', netns]);
  await ctx.host.run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  // New namespaces inherit ip_forward/rp_filter defaults that do not fit a node: set them explicitly.
  if (sysctls.length) await ctx.host.run(['ip', 'netns', 'exec', netns, 'sysctl', '-q', '-w', ...sysctls]);
}

export const NODE_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
  // kube-proxy needs bridged pod traffic to traverse iptables (per namespace on this kernel).
  'net.bridge.bridge-nf-call-iptables=1',
  'net.netfilter.nf_conntrack_acct=1',
];

/** The fabric: the underlay L2 segment (kind's docker network) plus the upstream resolver. No route out. */
export async function makeFabric(ctx: NetnsContext, runId: string, topo: Topology): Promise<NetnsTarget> {
  const netns = netnsName(runId, 'fabric');
  await addNamespace(ctx, netns, ['net.ipv4.conf.all.rp_filter=0']);
  await ipBatch(ctx, netns, [
    `link add ${UNDERLAY_BRIDGE} type bridge`,
    `addr add ${topo.underlayGateway}/${topo.underlay.bits} dev ${UNDERLAY_BRIDGE}`,
    `link set ${UNDERLAY_BRIDGE} up`,
  ]);
  return new NetnsTarget('fabric', netns, ctx);
}

/** A node: its own namespace, eth0 on the underlay (a veth into the fabric bridge), routes as a node has. */
export async function makeNode(ctx: NetnsContext, runId: string, topo: Topology, fabric: NetnsTarget, spec: NodeSpec): Promise<NetnsNode> {
  const netns = netnsName(runId, spec.name);
  await addNamespace(ctx, netns, NODE_SYSCTLS);
  const hostSide = `veth-n${spec.index}`; // interface names are at most 15 characters
  await ipBatch(ctx, fabric.netns, [
    `link add ${hostSide} type veth peer name eth0 netns ${netns}`,
    `link set ${hostSide} master ${UNDERLAY_BRIDGE}`,
    `link set ${hostSide} up`,
  ]);
  await ipBatch(ctx, netns, [
    `addr add ${spec.ip}/${topo.underlay.bits} dev eth0`,
    'link set eth0 up',
    // The default route stays inside the run: the fabric has no link to the root namespace.
    `route add default via ${topo.underlayGateway} dev eth0`,
  ]);
  return new NetnsNode(spec.name, netns, ctx, spec.ip, spec.podSubnet.text);
}
