import { readFileSync, writeFileSync } from 'node:fs';
import { VxError } from '../errors.ts';
import type { Pod } from '../providers/provider.ts';
import { parseTcpdumpStats } from './pcap.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Capture {
  file: string;
  /** Stops tcpdump (by its PID) and returns its statistics once the file is complete. */
  stop(): Promise<{ captured?: number; dropped?: number }>;
}

/**
 * tcpdump on the pod's eth0: the wire as the client sees it. Immediate mode and nanosecond timestamps (no
 * block timeout, no µs rounding); stays root so it can write where we ask. Ready once it says "listening".
 */
export async function startCapture(pod: Pod, file: string, filter = 'udp port 53'): Promise<Capture> {
  const errFile = `${file}.stderr`;
  writeFileSync(errFile, '');
  const argv = ['-i', 'eth0', '-n', '-U', '-Z', 'root', '--immediate-mode', '-B', '8192', '-s', '256', '--time-stamp-precision=nano', '-w', file, filter];
  // sh only to send tcpdump's own messages to a file of ours; `exec` keeps the PID the one recorded.
  const daemon = await pod.spawn(['sh', '-c', 'exec tcpdump "$@" 2>"$0"', errFile, ...argv], { name: 'tcpdump' });
  const t0 = Date.now();
  while (!readFileSync(errFile, 'utf8').includes('listening on')) {
    if (Date.now() - t0 > 5000) {
      await daemon.stop();
      throw new VxError('E_BENCH_CAPTURE', `tcpdump in ${pod.name} did not start capturing within 5 s: ${readFileSync(errFile, 'utf8').trim()}`);
    }
    await sleep(10);
  }
  return {
    file,
    stop: async () => {
      await sleep(100); // the last answers are in the socket buffer, not yet in the file
      await daemon.stop();
      return parseTcpdumpStats(readFileSync(errFile, 'utf8'));
    },
  };
}

export const STALL_TABLE = 'vxbench_stall';

/**
 * nft rules for a node: drop the first query of every `every`-th new DNS flow (source address + port) of
 * each client. Later packets of that flow pass, so a lookup stalls exactly once — for the resolver's
 * retry interval (musl 2.5 s, glibc 5 s) — and then completes. Raw priority: before conntrack and DNAT.
 */
export function stallRuleset(sources: readonly string[], every = 2): string {
  return [
    `table ip ${STALL_TABLE} {`,
    '  set seen {',
    '    type ipv4_addr . inet_service',
    '    flags dynamic,timeout',
    '    timeout 120s',
    '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    '    udp dport 53 ip saddr . udp sport @seen accept',
    ...sources.map((ip) => `    ip saddr ${ip} udp dport 53 add @seen { ip saddr . udp sport } numgen inc mod ${every} 0 counter drop`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Packets each source's stall rule dropped, from `nft list table`. */
export function stallDrops(listing: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of listing.matchAll(/ip saddr (\S+) udp dport 53 .*counter packets (\d+)/g)) out[m[1]!] = Number(m[2]);
  return out;
}

/** A resolv.conf that asks one server only, keeping search and options as kubelet wrote them. */
export function withNameserver(resolvConf: string, server: string): string {
  const lines = resolvConf.split('\n').filter((l) => !/^\s*nameserver\s/.test(l));
  const at = lines.findIndex((l) => /^\s*search\s/.test(l)) + 1;
  lines.splice(at, 0, `nameserver ${server}`);
  return lines.join('\n');
}
