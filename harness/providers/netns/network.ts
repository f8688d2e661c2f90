import type { NodeSpec, Topology } from '../../config/topology.ts';
import { NETNS_PREFIX } from './ledger.ts';
import { NetnsNode, NetnsTarget, type NetnsContext } from './node.ts';

export const UNDERLAY_BRIDGE = 'br-underlay';

export function netnsName(runId: string, role: string): string {
  return `${NETNS_PREFIX}${runId}-${role}`;
}

/** `ip -n NS -batch -`: one process for many link/addr/route changes (no `ip netns exec`, no mount namespace). */
export async function ipBatch(ctx: NetnsContext, netns: string, lines: readonly string[], opts: { json?: boolean } = {}): Promise<string> {
  const r = await ctx.host.run(['ip', ...(opts.json ? ['-j'] : []), '-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
  return r.stdout;
}

/** `bridge -n NS -batch -`: one process for many FDB changes. */
export async function bridgeBatch(ctx: NetnsContext, netns: string, lines: readonly string[]): Promise<void> {
  await ctx.host.run(['bridge', '-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/**
 * Fresh namespaces, each recorded before it exists, made by one `ip -batch` process whatever their number
 * (iproute2 returns to its own namespace after each `netns add`). Loopback is left to the caller's batch.
 */
export async function addNamespaces(ctx: NetnsContext, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await ctx.ledger.record(...names.map((name) => ({ kind: 'netns' as const, name })));
  await ctx.host.run(['ip', '-batch', '-'], { input: `${names.map((n) => `netns add ${n}`).join('\n')}\n` });
}

/** New namespaces inherit ip_forward/rp_filter defaults that do not fit a node: set them explicitly. */
async function setSysctls(ctx: NetnsContext, netns: string, sysctls: readonly string[]): Promise<void> {
  if (sysctls.length) await ctx.host.run(['ip', 'netns', 'exec', netns, 'sysctl', '-q', '-w', ...sysctls]);
}

/** A fresh namespace: recorded before it exists, loopback up, and the sysctls a Kubernetes node sets. */
export async function addNamespace(ctx: NetnsContext, netns: string, sysctls: readonly string[]): Promise<void> {
  await addNamespaces(ctx, [netns]);
  await ipBatch(ctx, netns, ['link set lo up']);
  await setSysctls(ctx, netns, sysctls);
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
  await addNamespaces(ctx, [netns]);
  await ipBatch(ctx, netns, [
    'link set lo up',
    `link add ${UNDERLAY_BRIDGE} type bridge`,
    `addr add ${topo.underlayGateway}/${topo.underlay.bits} dev ${UNDERLAY_BRIDGE}`,
    `link set ${UNDERLAY_BRIDGE} up`,
  ]);
  await setSysctls(ctx, netns, ['net.ipv4.conf.all.rp_filter=0']);
  return new NetnsTarget('fabric', netns, ctx);
}

/**
 * The nodes: each its own namespace with eth0 on the underlay (a veth into the fabric bridge) and the
 * routes a node has. A constant number of processes per node: the namespaces and the fabric's veth ends
 * are one batch each for all nodes, then every node's own batch and sysctls run concurrently.
 */
export async function makeNodes(ctx: NetnsContext, runId: string, topo: Topology, fabric: NetnsTarget, specs: readonly NodeSpec[]): Promise<NetnsNode[]> {
  const nodes = specs.map((spec) => ({ spec, netns: netnsName(runId, spec.name) }));
  await addNamespaces(ctx, nodes.map((n) => n.netns));
  await ipBatch(
    ctx,
    fabric.netns,
    nodes.flatMap(({ spec, netns }) => {
      const hostSide = `veth-n${spec.index}`; // interface names are at most 15 characters
      return [`link add ${hostSide} type veth peer name eth0 netns ${netns}`, `link set ${hostSide} master ${UNDERLAY_BRIDGE}`, `link set ${hostSide} up`];
    }),
  );
  await Promise.all(
    nodes.map(({ spec, netns }) =>
      Promise.all([
        ipBatch(ctx, netns, [
          'link set lo up',
          `addr add ${spec.ip}/${topo.underlay.bits} dev eth0`,
          'link set eth0 up',
          // The default route stays inside the run: the fabric has no link to the root namespace.
          `route add default via ${topo.underlayGateway} dev eth0`,
        ]),
        setSysctls(ctx, netns, NODE_SYSCTLS),
      ]),
    ),
  );
  return nodes.map(({ spec, netns }) => new NetnsNode(spec.name, netns, ctx, spec.ip, spec.podSubnet.text));
}
