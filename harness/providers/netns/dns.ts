import { upstreamDnsmasqArgs } from '../../kube/upstream-dns.ts';
import { join } from 'node:path';
import pRetry from 'p-retry';
import { nth } from '../../config/cidr.ts';
import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import type { ClusterDnsControl, Daemon, ForwardPolicy, UpstreamConfig } from '../provider.ts';
import type { Host } from './host.ts';
import type { NetnsPod, NetnsTarget } from './node.ts';
import { allSettled } from './settle.ts';

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

/**
 * The `server:` preamble every unbound the harness runs shares: one address, port 53, foreground-friendly
 * (no chroot, user switch, pidfile or syslog), one thread, and large socket buffers — without them
 * unbound drops bursts of queries and fakes a conntrack race.
 */
export function unboundServer(iface: string, dir: string): string[] {
  return [
    'server:',
    `  interface: ${iface}`,
    '  port: 53',
    '  do-ip6: no',
    '  access-control: 0.0.0.0/0 allow',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    '  num-threads: 1',
    '  so-rcvbuf: 8m',
    '  so-sndbuf: 8m',
  ];
}

const reverse = (ip: string) => `${ip.split('.').reverse().join('.')}.in-addr.arpa.`;

/**
 * unbound with CoreDNS semantics for the cluster domain: a static local zone answers known names,
 * NXDOMAIN for unknown ones and NODATA (AAAA of a v4-only service) — both with the SOA CoreDNS returns
 * (ns.dns.<domain>. hostmaster.<domain>., TTL 5). Everything else is forwarded upstream.
 */
export function unboundConf(topo: Topology, opts: { dir: string; upstreams: readonly string[]; policy?: ForwardPolicy }): string {
  const d = topo.dns.domain;
  const soa = (zone: string) => `"${zone} 5 IN SOA ns.dns.${d}. hostmaster.${d}. 1 7200 1800 86400 5"`;
  const recs = clusterRecords(topo);
  const lines = [
    ...unboundServer('0.0.0.0', opts.dir),
    // CoreDNS takes as many TCP clients as come (use-vc, node-local caches); unbound's default is 10.
    '  incoming-num-tcp: 256',
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
    ...forwardPolicyConf(opts.policy ?? 'health-checked').map((l) => `  ${l}`),
    'forward-zone:',
    '  name: "."',
    ...opts.upstreams.map((u) => `  forward-addr: ${u}`),
    '',
  ];
  return lines.join('\n');
}

/**
 * unbound's forwarder next to CoreDNS's `forward`. Both wait ≈ 2 s on a silent upstream before trying the
 * next one (CoreDNS: its read timeout; unbound: `infra-cache-min-rtt` keeps every retransmit timeout ≥ 1 s,
 * measured ≈ 2 s per silent try) and both still deliver an answer that comes late (unbound's
 * `discard-timeout` would drop it).
 * - `health-checked`: unbound's own selection — it remembers each upstream's RTT and timeouts (infra cache,
 *   15 min) and stops picking a silent one after it timed out, as CoreDNS's health checks mark it down.
 * - `random`: the infra cache forgets within 1–2 s; an upstream it knows nothing about ranks within the RTT
 *   band of a fast one (`unknown-server-time-limit` 376 < the 400 ms band), so every few seconds fetches
 *   pick the silent upstream at random again, as CoreDNS with `max_fails 0` (no health checks) does all the
 *   time. unbound merges identical in-flight queries and CoreDNS does not: one fetch stuck on the silent
 *   upstream stalls every client asking that name meanwhile, so stalls come in bursts.
 * - `sequential`: unbound has no ordered forwarding; the netns provider refuses it rather than fake it.
 */
export function forwardPolicyConf(policy: ForwardPolicy): string[] {
  const base = ['infra-cache-min-rtt: 1000', 'discard-timeout: 10000'];
  switch (policy) {
    case 'health-checked':
      return base;
    case 'random':
      return [...base, 'infra-host-ttl: 1', 'unknown-server-time-limit: 376'];
    case 'sequential':
      throw new VxError('E_UNSUPPORTED', 'netns provider: unbound has no sequential forwarder policy (it picks upstreams by RTT); use random or health-checked');
  }
}

/** An address on the fabric bridge whose packets are dropped: an upstream that never answers, inside the run. */
export function deadUpstreamAddress(topo: Topology): string {
  return nth(topo.underlay, 2 ** (32 - topo.underlay.bits) - 2);
}

/**
 * The cluster DNS replicas as a control: each replica is an unbound in its pod, its config under the run's
 * state dir. Changing upstreams rewrites every config and restarts the replicas (unbound has no reload of
 * forward zones without its remote control), then waits until each answers again.
 */
export class NetnsClusterDns implements ClusterDnsControl {
  private current: UpstreamConfig;
  private readonly daemons = new Map<string, Daemon>();
  private dead?: Promise<string>;

  constructor(
    private readonly topo: Topology,
    private readonly pods: readonly NetnsPod[],
    private readonly fabric: () => NetnsTarget | undefined,
    private readonly host: Host,
    private readonly stateDir: string,
  ) {
    this.current = { servers: [topo.underlayGateway], policy: 'health-checked' };
  }

  async upstreams(): Promise<UpstreamConfig> {
    return { servers: [...this.current.servers], policy: this.current.policy };
  }

  /** Writes every replica's config and starts the replicas that are not running. */
  async start(): Promise<void> {
    await allSettled(this.pods.map((pod) => this.startReplica(pod)));
  }

  private async startReplica(pod: NetnsPod): Promise<void> {
    const dir = join(this.stateDir, 'dns', pod.name);
    await this.host.mkdir(dir);
    const conf = join(dir, 'unbound.conf');
    await this.host.writeFile(conf, unboundConf(this.topo, { dir, upstreams: this.current.servers, policy: this.current.policy }));
    this.daemons.set(pod.name, await pod.spawn(['unbound', '-d', '-p', '-c', conf], { name: 'unbound' }));
  }

  async setUpstreams(servers: readonly string[], policy: ForwardPolicy): Promise<void> {
    if (servers.length === 0) throw new VxError('E_DNS_UPSTREAM', 'the cluster DNS needs at least one upstream');
    forwardPolicyConf(policy); // refuses what unbound cannot do before anything is stopped
    this.current = { servers: [...servers], policy };
    await allSettled(
      this.pods.map(async (pod) => {
        await this.daemons.get(pod.name)?.stop();
        this.daemons.delete(pod.name);
        await this.startReplica(pod);
        await replicaReady(pod, clusterRecords(this.topo)[1]!.name);
      }),
    );
  }

  deadUpstream(): Promise<string> {
    this.dead ??= (async () => {
      const fabric = this.fabric();
      if (!fabric) throw new VxError('E_FABRIC', 'netns provider: no fabric namespace for a dead upstream');
      const ip = deadUpstreamAddress(this.topo);
      await fabric.exec(['ip', 'addr', 'add', `${ip}/32`, 'dev', 'br-underlay']);
      // Dropped, not refused: an ICMP port-unreachable would tell the forwarder at once.
      await fabric.exec(['iptables', '-w', '5', '-A', 'INPUT', '-d', `${ip}/32`, '-m', 'comment', '--comment', 'vxchaos: dead upstream', '-j', 'DROP']);
      return ip;
    })();
    return this.dead;
  }
}

/** A replica is ready when it answers a cluster name itself. */
async function replicaReady(pod: NetnsPod, name: string): Promise<void> {
  await pRetry(
    async () => {
      const r = await pod.exec(['dig', '+time=1', '+tries=1', '+short', '@127.0.0.1', name], { nothrow: true, timeoutMs: 5000 });
      if (!r.stdout.trim()) throw new Error(`${pod.name}: dig @127.0.0.1 ${name}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    },
    { retries: 40, minTimeout: 50, maxTimeout: 250, factor: 1.5 },
  ).catch((e: Error) => {
    throw new VxError('E_DNS_NOT_READY', `cluster DNS replica not ready after restart: ${e.message}`);
  });
}

/** dnsmasq in the fabric: the "internet" upstream of the cluster DNS, authoritative for a few names only. */
export function dnsmasqArgv(topo: Topology, listen: string): string[] {
  return ['dnsmasq', ...upstreamDnsmasqArgs(topo, listen)];
}

export const reverseName = reverse;
