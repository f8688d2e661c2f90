import { isIP } from 'node:net';
import { z } from 'zod';
import { VxError } from '../errors.ts';
import { ForwardPolicyParam } from '../faults/dead-upstream.ts';
import { noParams } from '../faults/fault.ts';
import { runProbe } from '../measure/probe.ts';
import type { ClientPod } from '../providers/provider.ts';
import type { Mitigation, MitigationContext } from './mitigation.ts';

/** Does this nameserver answer at all (any rcode)? dig exits 9 when no reply came. */
async function answers(client: ClientPod, server: string): Promise<boolean> {
  const r = await client.exec(['dig', '+time=1', '+tries=1', `@${server}`, '.', 'NS'], { nothrow: true, timeoutMs: 10_000 });
  return r.exitCode === 0;
}

/** Seed 004's fix: ask each upstream from a pod, keep only those that answer (what the operator did by hand). */
export const dropDeadUpstream: Mitigation = {
  name: 'drop-dead-upstream',
  description: 'remove upstream nameservers that do not answer from the cluster DNS forward list',
  params: noParams,
  async apply(ctx) {
    const dns = ctx.cluster.clusterDns;
    const before = await dns.upstreams();
    // A non-address upstream (kind's CoreDNS default: /etc/resolv.conf, the node's resolvers) cannot be asked
    // from a pod by name; it is kept, as an operator would keep the default. The others are asked at once.
    const answering = await Promise.all(before.servers.map((s) => !isIP(s) || answers(ctx.client, s)));
    const alive = before.servers.filter((_, i) => answering[i]);
    if (alive.length === 0) throw new VxError('E_MITIGATION', `drop-dead-upstream: none of ${before.servers.join(', ')} answers`);
    const dropped = before.servers.length - alive.length;
    if (dropped > 0) {
      await dns.setUpstreams(alive, before.policy);
      ctx.undo.push(`cluster DNS forwards to ${before.servers.join(', ')} again`, () => dns.setUpstreams(before.servers, before.policy));
    }
    ctx.log(`drop-dead-upstream: ${dropped} dropped, forwarding to ${alive.join(', ')}`);
    return { counters: { 'dns.upstreamsDropped': dropped } };
  },
};

/**
 * Asks every replica directly (by pod IP, from the client) for each name until three rounds in a row answer
 * fast: a health-checking forwarder has to meet the silent server before it skips it, and the cell measures
 * the state after that. Returns how long it took and how many answers were slow.
 */
async function warmUp(ctx: MitigationContext<unknown>, names: readonly string[], limitMs = 20_000): Promise<{ ms: number; slow: number }> {
  const t0 = Date.now();
  let slow = 0;
  let fastRounds = 0;
  while (fastRounds < 3 && Date.now() - t0 < limitMs) {
    // One round asks every replica for every name and type at once: a replica that meets the silent server
    // costs the round its ≈ 2 s wait once, not once per question.
    const asks = ctx.cluster.dnsPods.flatMap((pod) =>
      names.flatMap((n) =>
        // A and AAAA, as the clients will ask.
        ['A', 'AAAA'].map(async (type) => {
          const s = Date.now();
          const r = await ctx.client.exec(['dig', '+time=5', '+tries=1', `@${pod.ip}`, n.endsWith('.') ? n : `${n}.`, type], { nothrow: true, timeoutMs: 10_000 });
          return r.exitCode === 0 && Date.now() - s <= 500;
        }),
      ),
    );
    const fastAnswers = await Promise.all(asks);
    const slowNow = fastAnswers.filter((f) => !f).length;
    slow += slowNow;
    fastRounds = slowNow === 0 ? fastRounds + 1 : 0;
  }
  return { ms: Date.now() - t0, slow };
}

/**
 * The cell measures the forwarder after it has learnt, as the clients meet it: short rounds of the workload
 * itself from the client (through the ClusterIP, the search list, both record types) until one round has no
 * lookup over the threshold, at most limitMs.
 */
async function untilNoStall(ctx: MitigationContext<unknown>, limitMs = 20_000): Promise<{ rounds: number; ms: number }> {
  const t0 = Date.now();
  const wl = ctx.workload;
  let rounds = 0;
  while (Date.now() - t0 < limitMs) {
    rounds++;
    const out = await runProbe(ctx.client, { targets: wl.targets, threads: wl.threads, durationS: 2, fresh: wl.fresh });
    if (!out.samples.some((s) => s.result !== 'OK' || s.latencyUs > wl.thresholdMs * 1000)) break;
  }
  return { rounds, ms: Date.now() - t0 };
}

/** The same upstreams behind a forwarder policy that stops using a silent one (params.forwarderPolicy, default health-checked). */
const ForwarderPolicyParams = z.strictObject({ policy: ForwardPolicyParam.default('health-checked') });

export const forwarderPolicy: Mitigation<z.output<typeof ForwarderPolicyParams>> = {
  name: 'forwarder-policy',
  description: 'the cluster DNS forwarder health-checks its upstreams (mitigationParams.policy) and skips one that does not answer',
  params: ForwarderPolicyParams,
  // Warm-up rounds until every replica has met the silent server, then a 2 s client round: 4–11 s measured.
  applyS: 7,
  requires: (p) => [{ forwardPolicy: p.policy, because: `the cluster DNS cannot forward with policy ${p.policy}` }],
  async apply(ctx) {
    const dns = ctx.cluster.clusterDns;
    const before = await dns.upstreams();
    const { policy } = ctx.params;
    await dns.setUpstreams(before.servers, policy);
    ctx.undo.push(`cluster DNS forwards with policy ${before.policy} again`, () => dns.setUpstreams(before.servers, before.policy));
    const names = ctx.workload.kind === 'resolve' ? ctx.workload.targets : Object.keys(ctx.cluster.topology.dns.upstream);
    const warm = await warmUp(ctx, names);
    const settled = ctx.workload.kind === 'resolve' ? await untilNoStall(ctx) : { rounds: 0, ms: 0 };
    ctx.log(`forwarder-policy: ${before.policy} → ${policy} over ${before.servers.join(', ')}; learnt in ${warm.ms} ms (${warm.slow} slow answers), then ${settled.rounds} client round(s) until none stalled`);
    return { counters: { 'forwarder.warmupMs': warm.ms + settled.ms, 'forwarder.warmupSlow': warm.slow, 'forwarder.warmupRounds': settled.rounds } };
  },
};
