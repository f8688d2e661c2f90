import type { Topology } from '../config/topology.ts';

/**
 * dnsmasq as the cluster DNS's upstream (the "internet" of the run), shared by both providers: authoritative
 * for the topology's dns.upstream names, NXDOMAIN for every other name (the real internet's answer, not
 * REFUSED, and never the machine's own resolver), listening on one address only. Flags after the binary.
 */
export function upstreamDnsmasqArgs(topo: Topology, listen: string, extra: readonly string[] = []): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--bind-interfaces',
    `--listen-address=${listen}`,
    '--user=root',
    '--group=root',
    '--pid-file=',
    '--cache-size=1000',
    ...extra,
    ...Object.entries(topo.dns.upstream).map(([name, ip]) => `--host-record=${name},${ip}`),
    '--address=/#/',
  ];
}
