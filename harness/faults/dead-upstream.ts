import { VxError } from '../errors.ts';
import type { ForwardPolicy } from '../providers/provider.ts';
import type { Fault } from './fault.ts';

export const FORWARD_POLICIES: readonly ForwardPolicy[] = ['sequential', 'random', 'health-checked'];

export function forwardPolicy(v: unknown, fallback: ForwardPolicy, who: string): ForwardPolicy {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(FORWARD_POLICIES as readonly string[]).includes(v)) {
    throw new VxError('E_PARAM', `${who}: policy must be one of ${FORWARD_POLICIES.join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as ForwardPolicy;
}

/**
 * Seed 004: the node resolv.conf the cluster DNS forwards to (`forward . /etc/resolv.conf`) lists a
 * nameserver that never answers. Names of the cluster are answered by the cluster DNS itself; external names
 * wait whenever the forwarder tries the silent server first. The silent server is real (an address inside
 * the run that drops every packet), and so is the forwarder's reaction to it: `native` is the only mode.
 * params.policy is the forwarder's policy while the fault is in place (default random: no health checks).
 */
export const deadUpstream: Fault = {
  name: 'dead-upstream',
  description: 'the cluster DNS forwards external names to a list that begins with a nameserver that never answers (params.policy)',
  seeds: ['004'],
  modes: ['native'],
  defaultMode: 'native',
  async apply(ctx, mode) {
    if (!this.modes.includes(mode)) throw new VxError('E_FAULT_MODE', `dead-upstream has modes ${this.modes.join(', ')} (got "${mode}")`);
    const policy = forwardPolicy(ctx.params.policy, 'random', 'dead-upstream');
    const dns = ctx.cluster.clusterDns;
    const before = await dns.upstreams();
    const dead = await dns.deadUpstream();
    const servers = [dead, ...before.servers.filter((s) => s !== dead)];
    await dns.setUpstreams(servers, policy);
    ctx.log(`dead-upstream: cluster DNS forwards to ${servers.join(', ')} (${policy}); ${dead} never answers`);
    return {
      counters: { 'dns.upstreams': servers.length },
      revert: () => dns.setUpstreams(before.servers, before.policy),
    };
  },
};
