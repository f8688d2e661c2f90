import type { Topology } from '../../config/topology.ts';

export interface DnsRecord {
  name: string;
  ip: string;
}

/** A/PTR records the cluster DNS serves, as CoreDNS's kubernetes plugin would for these services. */
export function clusterRecords(topo: Topology): DnsRecord[] {
  const d = topo.dns.domain;
  return [
    { name: `kubernetes.default.svc.${d}`, ip: '10.96.0.1' },
    { name: `kube-dns.kube-system.svc.${d}`, ip: topo.dns.clusterIP },
    ...topo.services.map((s) => ({ name: `${s.name}.${s.namespace}.svc.${d}`, ip: s.clusterIP })),
  ];
}

const reverse = (ip: string) => `${ip.split('.').reverse().join('.')}.in-addr.arpa.`;

/**
 * unbound with CoreDNS semantics for the cluster domain: a static local zone answers known names,
 * NXDOMAIN for unknown ones and NODATA (AAAA of a v4-only service) — both with the SOA CoreDNS returns
 * (ns.dns.<domain>. hostmaster.<domain>., TTL 5). Everything else is forwarded upstream.
 */
export function unboundConf(topo: Topology, opts: { dir: string; upstreams: readonly string[] }): string {
  const d = topo.dns.domain;
  const soa = (zone: string) => `"${zone} 5 IN SOA ns.dns.${d}. hostmaster.${d}. 1 7200 1800 86400 5"`;
  const recs = clusterRecords(topo);
  const lines = [
    'server:',
    '  interface: 0.0.0.0',
    '  port: 53',
    '  do-ip6: no',
    '  access-control: 0.0.0.0/0 allow',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${opts.dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    '  num-threads: 1',
    // Without large socket buffers unbound drops bursts of queries and fakes a conntrack race.
    '  so-rcvbuf: 8m',
    '  so-sndbuf: 8m',
    '  module-config: "iterator"',
    '  qname-minimisation: no',
    '  do-not-query-localhost: no',
    '  cache-max-negative-ttl: 5',
    `  local-zone: "${d}." static`,
    `  local-data: ${soa(`${d}.`)}`,
    ...recs.map((r) => `  local-data: "${r.name}. 5 IN A ${r.ip}"`),
    `  local-zone: "in-addr.arpa." transparent`,
    ...recs.map((r) => `  local-data-ptr: "${r.ip} ${r.name}."`),
    `  domain-insecure: "${d}."`,
    'forward-zone:',
    '  name: "."',
    ...opts.upstreams.map((u) => `  forward-addr: ${u}`),
    '',
  ];
  return lines.join('\n');
}

/** dnsmasq in the fabric: the "internet" upstream of the cluster DNS, authoritative for a few names only. */
export function dnsmasqArgv(topo: Topology, listen: string): string[] {
  return [
    'dnsmasq',
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
    ...Object.entries(topo.dns.upstream).map(([name, ip]) => `--host-record=${name},${ip}`),
    // Names it does not know are NXDOMAIN (the real internet's answer), not REFUSED.
    '--address=/#/',
  ];
}

export const reverseName = reverse;
