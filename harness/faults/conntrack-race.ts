import { VxError } from '../errors.ts';
import type { ClusterNode } from '../providers/provider.ts';
import type { Workload } from '../config/suite.ts';
import type { AppliedFault, Fault, FaultContext, Params } from './fault.ts';

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

function numberParam(params: Params, name: string, fallback: number): number {
  const v = params[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new VxError('E_FAULT_PARAM', `conntrack-race: ${name} must be a number (got ${JSON.stringify(v)})`);
  return v;
}

/** The node whose netfilter sees the client's queries first: the client pod's own node. */
function clientNode(ctx: FaultContext): ClusterNode {
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
export const conntrackRace: Fault = {
  name: 'conntrack-race',
  description: 'parallel A/AAAA through the DNS ClusterIP DNAT: native trigger, or emulated insert-race drops (nft, dropPercent)',
  seeds: ['000', '003'],
  modes: ['native', 'emulated'],
  defaultMode: 'native',
  async apply(ctx, mode): Promise<AppliedFault> {
    if (!this.modes.includes(mode)) throw new VxError('E_FAULT_MODE', `conntrack-race has modes ${this.modes.join(', ')} (got "${mode}")`);
    // The trigger: seed 003's 200 concurrent lookups natively; emulated cells keep the suite's threads unless told.
    const workload: Partial<Workload> = ctx.params.concurrency !== undefined || mode === 'native' ? { threads: numberParam(ctx.params, 'concurrency', SEED_CONCURRENCY) } : {};
    if (mode === 'native') {
      ctx.log(`conntrack-race (native): ${workload.threads} concurrent lookups; the kernel's conntrack -S shows whether inserts clash`);
      return { counters: {}, workload, revert: async () => undefined };
    }
    const dropPercent = numberParam(ctx.params, 'dropPercent', 20);
    const node = clientNode(ctx);
    await node.exec(['nft', '-f', '-'], { input: raceRuleset(ctx.cluster.topology.dns.clusterIP, dropPercent) });
    ctx.log(`conntrack-race (emulated) on ${node.name}: second query in flight on one (addr, port) → ${ctx.cluster.topology.dns.clusterIP}:53 dropped with p=${dropPercent}%`);
    let gone = false;
    return {
      counters: { 'race.dropPercent': dropPercent },
      workload,
      finalCounters: () => readRaceCounters(node),
      revert: async () => {
        if (gone) return;
        gone = true;
        await node.exec(['nft', 'delete', 'table', 'ip', RACE_TABLE]);
      },
    };
  },
};
