import { NODE_LOCAL_DNS_ADDRESS } from '../providers/provider.ts';
import { noParams } from '../faults/fault.ts';
import type { Mitigation } from './mitigation.ts';
import { editResolvConf, withNameservers } from './resolv-options.ts';

/** node-local-dns's default link-local address; the address a run uses is the one enable() returns. */
export const NODELOCAL_IP = NODE_LOCAL_DNS_ADDRESS;

/**
 * Seed 003's lasting fix, NodeLocal DNSCache: the provider puts a cache on every node (netns: unbound on
 * 169.254.20.10 with node-cache's NOTRACK rules; kind: the node-local-dns DaemonSet), and the client's
 * resolv.conf names that cache instead of the cluster DNS ClusterIP. Queries to it are untracked, the cache
 * asks the cluster DNS over TCP.
 */
export const nodeLocalDns: Mitigation = {
  name: 'nodelocaldns',
  description: 'NodeLocal DNSCache: a cache per node on 169.254.20.10 (NOTRACK), TCP to the cluster DNS, clients pointed at it',
  params: noParams,
  async apply(ctx) {
    const control = ctx.cluster.nodeLocalDns;
    // enable() removes what it installed if it fails; once it resolves, disable() is the undo.
    const { address } = await control.enable();
    ctx.undo.push('NodeLocal DNSCache removed', () => control.disable());
    await editResolvConf(ctx.client, ctx.undo, (conf) => withNameservers(conf, [address]));
    ctx.log(`nodelocaldns: ${ctx.cluster.nodes.length} node caches on ${address}, ${ctx.client.name} → ${address}`);
    return { counters: { 'nodelocaldns.nodes': ctx.cluster.nodes.length } };
  },
};
