import { NODE_LOCAL_DNS_ADDRESS } from '../providers/provider.ts';
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
  async apply(ctx) {
    const control = ctx.cluster.nodeLocalDns;
    let resolv: Awaited<ReturnType<typeof editResolvConf>> | undefined;
    const revert = async () => {
      await resolv?.restore();
      resolv = undefined;
      await control.disable();
    };
    try {
      const { address } = await control.enable();
      resolv = await editResolvConf(ctx.client, (conf) => withNameservers(conf, [address]));
      ctx.log(`nodelocaldns: ${ctx.cluster.nodes.length} node caches on ${address}, ${ctx.client.name} → ${address}`);
    } catch (e) {
      await revert();
      throw e;
    }
    return { counters: { 'nodelocaldns.nodes': ctx.cluster.nodes.length }, revert };
  },
};
