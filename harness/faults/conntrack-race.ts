import { z } from 'zod';
import { VxError } from '../errors.ts';
import type { ClusterNode } from '../providers/provider.ts';
import type { Workload } from '../config/suite.ts';
import type { Applied, Fault, FaultContext } from './fault.ts';

/** The nft table of the emulation, in the client's node (where kube-proxy's DNAT and conntrack happen). */
export const RACE_TABLE = 'vxc_conntrack_race';

/** Seed 003 measured with 200 concurrent lookups. */
export const SEED_CONCURRENCY = 200;

/**
 * The conntrack insert race as nft rules (DESIGN.md, "Measured on this kind of machine"): a UDP query to the
 * DNS ClusterIP whose (source address, source port) already has a query in flight — the A/AAAA pair a
 * resolver sends in parallel from one socket — is dropped with probability dropPercent %, as the losing
 * conntrack insert was on kernels before 5.0. An element is added on a query, removed when the answer
 * passes (after de-NAT, so its source is the ClusterIP again) and expires after 1 s if none comes.
 * Prerouting serves pods; output and input serve a node's own processes.
 */
export function raceRuleset(clusterIP: string, dropPercent: number, port = 53): string {
  if (!Number.isInteger(dropPercent) || dropPercent < 0 || dropPercent > 100) {
    throw new VxError('E_FAULT_PARAM', `conntrack-race: dropPercent must be an integer 0–100 (got ${dropPercent})`);
  }
  const query = `ip daddr ${clusterIP} udp dport ${port}`;
  const raceRules = [
    `${query} ip saddr . udp sport @inflight counter name second_queries numgen random mod 100 < ${dropPercent} counter name race_drops drop`,
    `${query} add @inflight { ip saddr . udp sport }`,
  ];
  const answer = `ip saddr ${clusterIP} udp sport ${port} delete @inflight { ip daddr . udp dport }`;
  return [
    `table ip ${RACE_TABLE} {`,
    '  counter second_queries { }',
    '  counter race_drops { }',
    '  set inflight {',
    '    type ipv4_addr . inet_service',
    '    flags dynamic,timeout',
    '    timeout 1s',
    '    size 65535',
    '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    ...raceRules.map((r) => `    ${r}`),
    '  }',
    '  chain output {',
    '    type filter hook output priority raw; policy accept;',
    ...raceRules.map((r) => `    ${r}`),
    '  }',
    // After kube-proxy's de-NAT (srcnat, 100) for pods; after the input de-NAT for the node's own sockets.
    '  chain postrouting {',
    '    type filter hook postrouting priority 200; policy accept;',
    `    ${answer}`,
    '  }',
    '  chain input {',
    '    type filter hook input priority 200; policy accept;',
    `    ${answer}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** `nft -j list counters table …`: named counters by name. */
export function parseNftCounters(json: string): Record<string, number> {
  const out: Record<string, number> = {};
  const doc = JSON.parse(json || '{}') as { nftables?: { counter?: { name: string; packets: number } }[] };
  for (const item of doc.nftables ?? []) {
    if (item.counter) out[item.counter.name] = item.counter.packets;
  }
  return out;
}

const RaceParams = z.strictObject({
  /** Concurrent lookups (the trigger); default seed 003's 200 in native mode, the suite's threads otherwise. */
  concurrency: z.number().int().min(1).max(512).optional(),
  /** emulated: the share (%) of second queries in flight that are dropped. */
  dropPercent: z.number().int().min(0).max(100).default(20),
});
type RaceParams = z.output<typeof RaceParams>;

/** The node whose netfilter sees the client's queries first: the client pod's own node. */
function clientNode(ctx: FaultContext<RaceParams>): ClusterNode {
  return ctx.cluster.node(ctx.client.node);
}

async function readRaceCounters(node: ClusterNode): Promise<Record<string, number>> {
  const r = await node.exec(['nft', '-j', 'list', 'counters', 'table', 'ip', RACE_TABLE]);
  const c = parseNftCounters(r.stdout);
  return { 'race.secondQueries': c.second_queries ?? 0, 'race.drops': c.race_drops ?? 0 };
}

/**
 * Seeds 000 and 003: A and AAAA leave one socket in parallel, both create a conntrack entry through the
 * ClusterIP DNAT, one insert loses and its packet is dropped; the resolver waits out its timeout (musl
 * 2.5 s, glibc 5 s). `native` only brings the trigger — many concurrent lookups — and lets the kernel show
 * its conntrack counters (fixed kernels resolve the clash: expect not-reproduced); `emulated` also drops
 * the second query of a pair with probability dropPercent, so mitigations can be measured here.
 */
export const conntrackRace: Fault<RaceParams> = {
  name: 'conntrack-race',
  description: 'parallel A/AAAA through the DNS ClusterIP DNAT: native trigger, or emulated insert-race drops (nft, dropPercent)',
  seeds: ['000', '003'],
  modes: ['native', 'emulated'],
  defaultMode: 'native',
  params: RaceParams,
  requires: (_p, mode) => (mode === 'emulated' ? [{ kernel: 'nftDynamicSets', because: 'the emulated race needs nft dynamic sets with timeouts' }] : []),
  async apply(ctx, mode): Promise<Applied> {
    // The trigger: seed 003's 200 concurrent lookups natively; emulated cells keep the suite's threads unless told.
    const concurrency = ctx.params.concurrency ?? (mode === 'native' ? SEED_CONCURRENCY : undefined);
    const workload: Partial<Workload> = concurrency !== undefined ? { threads: concurrency } : {};
    if (mode === 'native') {
      ctx.log(`conntrack-race (native): ${concurrency} concurrent lookups; the kernel's conntrack -S shows whether inserts clash`);
      return { counters: {}, workload };
    }
    const { dropPercent } = ctx.params;
    const node = clientNode(ctx);
    await node.exec(['nft', '-f', '-'], { input: raceRuleset(ctx.cluster.topology.dns.clusterIP, dropPercent) });
    ctx.undo.push(`${node.name}: nft table ${RACE_TABLE} removed`, () => node.exec(['nft', 'delete', 'table', 'ip', RACE_TABLE]));
    ctx.log(`conntrack-race (emulated) on ${node.name}: second query in flight on one (addr, port) → ${ctx.cluster.topology.dns.clusterIP}:53 dropped with p=${dropPercent}%`);
    return {
      counters: { 'race.dropPercent': dropPercent },
      workload,
      finalCounters: () => readRaceCounters(node),
    };
  },
};
