import { z } from 'zod';
import type { ForwardPolicy } from '../providers/provider.ts';
import type { Fault } from './fault.ts';

export const FORWARD_POLICIES: readonly ForwardPolicy[] = ['sequential', 'random', 'health-checked'];

/** A forward policy param; the provider's capabilities say which it can do. */
export const ForwardPolicyParam = z.enum(FORWARD_POLICIES as unknown as [ForwardPolicy, ...ForwardPolicy[]]);

const DeadUpstreamParams = z.strictObject({
  /** The forwarder's policy while the fault is in place (default random: no health checks). */
  policy: ForwardPolicyParam.default('random'),
});

/**
 * Seed 004: the node resolv.conf the cluster DNS forwards to (`forward . /etc/resolv.conf`) lists a
 * nameserver that never answers. Names of the cluster are answered by the cluster DNS itself; external names
 * wait whenever the forwarder tries the silent server first. The silent server is real (an address inside
 * the run that drops every packet), and so is the forwarder's reaction to it: `native` is the only mode.
 * params.policy is the forwarder's policy while the fault is in place (default random: no health checks).
 */
export const deadUpstream: Fault<z.output<typeof DeadUpstreamParams>> = {
  name: 'dead-upstream',
  description: 'the cluster DNS forwards external names to a list that begins with a nameserver that never answers (params.policy)',
  seeds: ['004'],
  modes: ['native'],
  defaultMode: 'native',
  params: DeadUpstreamParams,
  requires: (p) => [{ forwardPolicy: p.policy, because: `the cluster DNS cannot forward with policy ${p.policy}` }],
  async apply(ctx) {
    const { policy } = ctx.params;
    const dns = ctx.cluster.clusterDns;
    const before = await dns.upstreams();
    const dead = await dns.deadUpstream();
    const servers = [dead, ...before.servers.filter((s) => s !== dead)];
    await dns.setUpstreams(servers, policy);
    ctx.undo.push(`cluster DNS forwards to ${before.servers.join(', ')} (${before.policy}) again`, () => dns.setUpstreams(before.servers, before.policy));
    ctx.log(`dead-upstream: cluster DNS forwards to ${servers.join(', ')} (${policy}); ${dead} never answers`);
    return { counters: { 'dns.upstreams': servers.length } };
  },
};
