import { cpus } from 'node:os';
import { join } from 'node:path';
import pRetry from 'p-retry';
import { ROOT } from '../../config/suite.ts';
import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import { DROPTRACER_BIN, requireRoot, requireTools } from '../../doctor.ts';
import { DropTracer, DropsUnavailableError, netnsInodes, type DropSnapshot } from '../../measure/drops.ts';
import type { Capabilities, Cluster, ClusterDrops, KernelFeature, Libc, ProbeTarget, Provider, RunRef, UpOptions } from '../provider.ts';
import { addPod } from './cni.ts';
import { clusterRecords, dnsmasqArgv, NetnsClusterDns } from './dns.ts';
import { FlannelEmulator } from './flannel.ts';
import type { Host } from './host.ts';
import { natTable, type ServiceEndpoints } from './kube-proxy.ts';
import { downAll, Ledger, leftovers, runOfNamespace } from './ledger.ts';
import { LocalHost } from './local-host.ts';
import { collectNetnsLogs } from './logs.ts';
import { addNamespaces, makeFabric, makeNodes, netnsName } from './network.ts';
import { NetnsNodeLocalDns } from './nodelocaldns.ts';
import { NetnsClientPod, NetnsPod, type NetnsContext, type NetnsNode, type NetnsTarget } from './node.ts';
import { allSettled } from './settle.ts';

export const PROBE_BINARIES: Record<Libc, string> = {
  musl: join(ROOT, 'build', 'vxprobe-musl'),
  glibc: join(ROOT, 'build', 'vxprobe-glibc'),
};

/** What kubelet writes for a ClusterFirst pod: the cluster DNS, the Kubernetes search list, ndots:5. */
export function podResolvConf(topo: Topology, namespace = 'default'): string {
  const d = topo.dns.domain;
  return `search ${namespace}.svc.${d} svc.${d} ${d}\nnameserver ${topo.dns.clusterIP}\noptions ndots:5\n`;
}

const POD_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
// As in a Debian image: files, then DNS (no mdns or systemd-resolved on the way).
const POD_NSSWITCH = 'hosts: files dns\n';

/**
 * The run's drop tracer (build/vxdrops): one per run, started through the Host, recorded in the ledger,
 * watching only the namespaces the run creates, under the run's names. Unavailable (with why) when it cannot
 * start here; the run goes on without it.
 */
export class NetnsDrops implements ClusterDrops {
  private tracer?: DropTracer;
  private failure?: string;
  private readonly watched = new Map<string, number>();

  private constructor(private readonly ctx: NetnsContext) {}

  static async start(ctx: NetnsContext, binary = DROPTRACER_BIN): Promise<NetnsDrops> {
    const d = new NetnsDrops(ctx);
    try {
      if (!(await ctx.host.exists(binary))) throw new DropsUnavailableError(`${binary} is not built (run \`vxchaos setup\`)`);
      const exitWith = ctx.host instanceof LocalHost ? process.pid : undefined;
      d.tracer = await DropTracer.start(ctx.host, { binary, dir: join(ctx.ledger.dir, 'drops'), ...(exitWith ? { exitWith } : {}) });
      const start = await ctx.host.procStart(d.tracer.pid);
      if (start !== undefined) await ctx.ledger.record({ kind: 'pid', pid: d.tracer.pid, start, what: 'drop tracer' });
    } catch (e) {
      if (d.tracer) await d.tracer.stop().catch(() => undefined);
      d.tracer = undefined;
      d.failure = e instanceof DropsUnavailableError ? e.why : (e as Error).message.split('\n')[0];
    }
    return d;
  }

  get available(): boolean {
    return this.tracer !== undefined;
  }

  get why(): string | undefined {
    return this.failure;
  }

  get reasons(): boolean | undefined {
    return this.tracer?.kernelHasReasons;
  }

  /** Counts the drops of these namespaces under the run's names (node-1, client-musl, fabric). */
  async watch(targets: readonly NetnsTarget[]): Promise<void> {
    const t = this.tracer;
    if (!t) return;
    try {
      // One stat and one round trip to the tracer for all of them, whatever their number.
      const inodes = await netnsInodes(this.ctx.host, targets.map((x) => x.netns));
      await t.watchAll(targets.map((x, i) => [inodes[i]!, x.name] as const));
      targets.forEach((x, i) => this.watched.set(x.netns, inodes[i]!));
    } catch (e) {
      // A tracer that cannot watch would report nothing as if nothing died: say it is unavailable instead.
      this.failure = `watching the run's namespaces failed: ${(e as Error).message.split('\n')[0]}`;
      this.tracer = undefined;
      await t.stop().catch(() => undefined);
    }
  }

  snapshot(): Promise<DropSnapshot> {
    if (!this.tracer) return Promise.reject(new DropsUnavailableError(this.failure ?? 'no tracer'));
    return this.tracer.snapshot();
  }

  delta(before: DropSnapshot, after: DropSnapshot) {
    return this.tracer ? this.tracer.delta(before, after) : [];
  }

  /** Unwatches every namespace (they are about to be deleted: inodes are reused) and stops the tracer. */
  async stop(): Promise<void> {
    const t = this.tracer;
    if (!t) return;
    this.tracer = undefined;
    this.failure = 'the run is down';
    await t.unwatchAll([...this.watched.values()]).catch(() => undefined);
    this.watched.clear();
    await t.stop();
  }
}

class NetnsCluster implements Cluster {
  readonly provider = 'netns';
  nodes: NetnsNode[] = [];
  dnsPods: NetnsPod[] = [];
  serverPods: NetnsPod[] = [];
  clients: Partial<Record<Libc, NetnsClientPod>> = {};
  fabric?: NetnsTarget;
  flannel: FlannelEmulator;
  clusterDns: NetnsClusterDns;
  nodeLocalDns: NetnsNodeLocalDns;
  drops?: NetnsDrops;

  constructor(
    readonly runId: string,
    readonly topology: Topology,
    readonly ctx: NetnsContext,
  ) {
    this.flannel = new FlannelEmulator(topology, this.nodes);
    this.clusterDns = new NetnsClusterDns(topology, this.dnsPods, () => this.fabric, ctx.host, ctx.ledger.dir);
    this.nodeLocalDns = new NetnsNodeLocalDns(topology, this.nodes);
  }

  node(name: string): NetnsNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new VxError('E_NODE', `no node "${name}" in topology ${this.topology.name}`);
    return n;
  }

  nodeProbe(name: string): ProbeTarget {
    const node = this.node(name);
    return Object.assign(Object.create(node) as NetnsNode, { probe: [PROBE_BINARIES.glibc] });
  }

  get enterHint(): string {
    const node = this.nodes[0]?.netns ?? netnsName(this.runId, '<node>');
    const where = this.ctx.host.describe === 'local' ? '' : ` (on ${this.ctx.host.describe})`;
    return `ip netns exec ${node} bash${where}`;
  }

  collectLogs(dir: string): Promise<string[]> {
    const targets = [...(this.fabric ? [this.fabric] : []), ...this.nodes];
    return collectNetnsLogs(this.ctx.host, targets, join(this.ctx.ledger.dir, 'logs'), dir).catch(() => []);
  }

  async describe(): Promise<Record<string, string>> {
    const out: Record<string, string> = { 'netns-host': this.ctx.host.describe };
    const q = await this.ctx.host.run(['dpkg-query', '-W', '-f', '${Package} ${Version}\\n', 'libc6', 'musl', 'unbound', 'dnsmasq-base', 'iptables', 'containernetworking-plugins', 'iproute2', 'conntrack'], { nothrow: true });
    for (const line of q.stdout.split('\n').filter(Boolean)) {
      const [pkg, ver] = line.split(' ');
      if (pkg && ver) out[pkg] = ver;
    }
    const ipt = await this.ctx.host.run(['iptables', '--version'], { nothrow: true });
    out['iptables-backend'] = /\((\w+)\)/.exec(ipt.stdout)?.[1] ?? 'unknown';
    return out;
  }

  async down(): Promise<void> {
    // Before any namespace goes: the tracer unwatches them, then exits (the ledger would also kill it).
    await this.drops?.stop().catch(() => undefined);
    const problems = await this.ctx.ledger.teardown();
    if (problems.length) throw new VxError('E_TEARDOWN', `teardown left problems:\n${problems.join('\n')}`);
  }
}

/** What the netns provider can do whatever the kernel: see Capabilities. */
export const NETNS_CAPABILITIES: Capabilities = {
  // flanneld and kube-proxy are emulated by the harness: an emulated fault always brings its symptom.
  symptomsGuaranteed: true,
  ownsKubeProxyChains: true,
  // unbound picks upstreams by RTT: no ordered (sequential) forwarding (dns.ts forwardPolicyConf).
  forwardPolicies: ['random', 'health-checked'],
  // A node's /etc files are /etc/netns/<ns>/ bind mounts made by `ip netns exec`, private to the run.
  privateNodeFiles: true,
  // dnsmasq in the fabric answers the topology's dns.upstream names.
  servesUpstreamNames: true,
  // A cluster is a few dozen namespaces and processes: a second one costs under a second and lets the stalls of
  // one cell overlap another's. One CPU would only make them wait for each other.
  clustersAtOnce: cpus().length >= 2 ? 2 : 1,
};

const kernelAtLeast = (release: string, major: number, minor: number): boolean | undefined => {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return undefined;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
};

/** The kernel's build options (CONFIG_X → y, m or n) from /proc/config.gz or /boot/config-<release>, if either exists. */
async function kernelConfig(host: Host, release: string): Promise<Map<string, string>> {
  const r = await host.run(['sh', '-c', 'zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$1"', 'kconfig', release], { nothrow: true, timeoutMs: 5000 });
  const out = new Map<string, string>();
  for (const m of r.stdout.matchAll(/^(?:(CONFIG_\w+)=(\S+)|# (CONFIG_\w+) is not set)$/gm)) out.set(m[1] ?? m[3]!, m[2] ?? 'n');
  return out;
}

/**
 * The kernel facilities of the host's kernel, from `uname -r`, its build options and its loaded modules.
 * A facility is false only when known absent; unknown stays undefined (a cell needing it is not skipped).
 */
export async function detectKernel(host: Host): Promise<Partial<Record<KernelFeature, boolean>>> {
  const release = (await host.run(['uname', '-r'], { timeoutMs: 5000 })).stdout.trim();
  const config = await kernelConfig(host, release);
  const has = async (option: string, module: string): Promise<boolean | undefined> => {
    const c = config.get(option);
    if (c === 'y' || c === 'm') return true;
    if (await host.exists(`/sys/module/${module}`)) return true;
    return c === 'n' ? false : undefined;
  };
  const out: Partial<Record<KernelFeature, boolean>> = {};
  const set = (k: KernelFeature, v: boolean | undefined) => v !== undefined && (out[k] = v);
  // skb:kfree_skb carries enum skb_drop_reason since 5.17.
  set('dropReasons', kernelAtLeast(release, 5, 17));
  // Dynamic sets whose elements the packet path also deletes (nft_dynset delete, d0a8d877da97, 5.4).
  const dynsetKernel = kernelAtLeast(release, 5, 4);
  set('nftDynamicSets', dynsetKernel === false ? false : dynsetKernel && (await has('CONFIG_NF_TABLES', 'nf_tables')));
  set('vxlan', await has('CONFIG_VXLAN', 'vxlan'));
  set('conntrack', await has('CONFIG_NF_CONNTRACK', 'nf_conntrack'));
  return out;
}

export interface NetnsProviderOptions {
  /** Where the namespaces live: this machine (default) or a guest agent in a VM. */
  host?: Host;
}

export class NetnsProvider implements Provider {
  readonly name = 'netns';
  private readonly host: Host;
  private kernel?: Partial<Record<KernelFeature, boolean>>;

  constructor(opts: NetnsProviderOptions = {}) {
    this.host = opts.host ?? new LocalHost();
  }

  /** Kernel facilities are known once preflight (or up) has asked the host. */
  get capabilities(): Capabilities {
    return { ...NETNS_CAPABILITIES, ...(this.kernel ? { kernel: { ...this.kernel } } : {}) };
  }

  async preflight(): Promise<void> {
    if (this.host instanceof LocalHost) {
      requireRoot('the netns provider');
      await requireTools('cluster');
    } else {
      const id = await this.host.run(['id', '-u'], { timeoutMs: 5000 });
      if (id.stdout.trim() !== '0') throw new VxError('E_NOT_ROOT', `the netns provider needs root on ${this.host.describe}`);
    }
    for (const [libc, bin] of Object.entries(PROBE_BINARIES)) {
      if (!(await this.host.exists(bin))) throw new VxError('E_PROBE_MISSING', `the ${libc} probe is not built (${bin}); run \`npm run setup\``);
    }
    this.kernel ??= await detectKernel(this.host);
  }

  async list(): Promise<RunRef[]> {
    return (await leftovers(this.host)).map((l) => {
      const what = [
        l.ledger ? 'ledger' : 'no ledger',
        `${l.namespaces.length} namespace${l.namespaces.length === 1 ? '' : 's'}`,
        `${l.processes} process${l.processes === 1 ? '' : 'es'}`,
      ];
      return { runId: l.runId, what: what.join(', ') };
    });
  }

  async down(runId?: string): Promise<{ removed: string[]; problems: string[] }> {
    const r = await downAll(this.host, runId);
    const removed = new Set([...r.runs, ...r.namespaces.map((ns) => runOfNamespace(ns, r.runs))]);
    return { removed: [...removed], problems: r.problems };
  }

  async up(topo: Topology, opts: UpOptions): Promise<Cluster> {
    this.kernel ??= await detectKernel(this.host);
    const ctx: NetnsContext = { host: this.host, ledger: await Ledger.open(this.host, opts.runId) };
    const cluster = new NetnsCluster(opts.runId, topo, ctx);
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      opts.onStep?.(name, 'start');
      const r = await fn();
      opts.onStep?.(name, 'done', Date.now() - t0);
      return r;
    };
    // The tracer attaches (BTF, verifier) while the fabric is made; down() stops it whatever happens next.
    const drops = NetnsDrops.start(ctx).then((d) => (cluster.drops = d));
    try {
      const fabric = await step('underlay fabric', () => makeFabric(ctx, opts.runId, topo));
      cluster.fabric = fabric;
      await step(`nodes (${topo.nodeSpecs.length})`, async () => {
        cluster.nodes.push(...(await makeNodes(ctx, opts.runId, topo, fabric, topo.nodeSpecs)));
      });
      await step('drop tracer', async () => {
        await (await drops).watch([fabric, ...cluster.nodes]);
      });
      await step('flanneld (flannel.1, VtepMAC leases, peers)', () => cluster.flannel.startAll());
      await step('pods via CNI bridge + host-local', () => addPods(cluster, opts.clients));
      // What needs only the pods runs at once: kube-proxy's chains, the service endpoints, the upstream DNS and
      // the cluster DNS replicas; then the cluster DNS is asked through the ClusterIP, which needs them all.
      await allSettled<unknown>([
        cluster.drops?.watch([...cluster.dnsPods, ...cluster.serverPods, ...Object.values(cluster.clients)]) ?? Promise.resolve(),
        step('kube-proxy (iptables)', async () => {
          const services = serviceEndpoints(topo, cluster);
          await allSettled(cluster.nodes.map((n) => n.exec(['iptables-restore', '-w', '5'], { input: natTable(topo, n.podSubnet, services) })));
        }),
        cluster.serverPods.length
          ? step(`service endpoints (${cluster.serverPods.length})`, async () => {
              await allSettled(
                cluster.serverPods.map((pod) => {
                  const svc = topo.services.find((s) => pod.name.startsWith(`${s.name}-`))!;
                  return pod.spawn([PROBE_BINARIES.glibc, '-L', String(svc.targetPort)], { name: 'server' });
                }),
              );
            })
          : Promise.resolve(),
        step('upstream DNS (dnsmasq)', async () => {
          await fabric.spawn(dnsmasqArgv(topo, topo.underlayGateway), { name: 'dnsmasq' });
        }),
        step(`cluster DNS (${cluster.dnsPods.length} unbound replicas)`, () => cluster.clusterDns.start()),
      ]);
      await step('cluster DNS answers through the ClusterIP', () => waitForDns(cluster));
      // The cluster answered through flannel.1 and kube-proxy's DNAT: the kernel has VXLAN and conntrack.
      this.kernel = { ...this.kernel, vxlan: true, conntrack: true };
      // The tracer read the tracepoint's signature from the kernel's BTF: a fact, where the release was a guess.
      if (cluster.drops?.reasons !== undefined) this.kernel = { ...this.kernel, dropReasons: cluster.drops.reasons };
      return cluster;
    } catch (e) {
      // What was built so far tells why bring-up failed: collect it before it is removed.
      if (opts.logsDir) await cluster.collectLogs(opts.logsDir);
      await drops.catch(() => undefined);
      await cluster.down().catch(() => undefined);
      throw e;
    }
  }
}

/**
 * Every pod: the namespaces in one batch, then CNI ADD node by node — concurrently across nodes, in order
 * within a node (its bridge and host-local IPAM are shared, and the order keeps pod IPs as they always were:
 * the DNS replica, service endpoints, clients).
 */
async function addPods(cluster: NetnsCluster, clients: readonly Libc[]): Promise<void> {
  const { topology: topo, ctx, runId } = cluster;
  type Plan = { node: string; name: string; netns: string; role: 'dns' | 'server' | Libc };
  const plans: Plan[] = [
    ...topo.dns.replicas.map((node) => ({ node, name: `coredns-${node}`, netns: netnsName(runId, `${node}-dns`), role: 'dns' as const })),
    ...topo.services.flatMap((svc) => svc.endpoints.map((node) => ({ node, name: `${svc.name}-${node}`, netns: netnsName(runId, `${node}-${svc.name}`), role: 'server' as const }))),
    ...clients.map((libc) => ({ node: topo.clients.node, name: `client-${libc}`, netns: netnsName(runId, `${topo.clients.node}-${libc}`), role: libc })),
  ];
  for (const p of plans) cluster.node(p.node); // an unknown node fails before anything is made
  await addNamespaces(ctx, plans.map((p) => p.netns));
  const ips = new Map<string, string>();
  const byNode = new Map<string, Plan[]>();
  for (const p of plans) byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
  await allSettled(
    [...byNode].map(async ([nodeName, nodePlans]) => {
      const node = cluster.node(nodeName);
      for (const p of nodePlans) ips.set(p.netns, (await addPod(ctx, topo, node, p.netns, p.name, { namespaceMade: true })).ip);
    }),
  );
  for (const p of plans) {
    const ip = ips.get(p.netns)!;
    if (p.role === 'dns') cluster.dnsPods.push(new NetnsPod(p.name, p.netns, ctx, p.node, ip, 'dns'));
    else if (p.role === 'server') cluster.serverPods.push(new NetnsPod(p.name, p.netns, ctx, p.node, ip, 'server'));
    else cluster.clients[p.role] = new NetnsClientPod(p.name, p.netns, ctx, p.node, ip, p.role, [PROBE_BINARIES[p.role]]);
  }
  await allSettled(
    Object.values(cluster.clients).map(async (pod) => {
      await pod.writeFile('/etc/resolv.conf', podResolvConf(topo));
      await pod.writeFile('/etc/hosts', POD_HOSTS);
      await pod.writeFile('/etc/nsswitch.conf', POD_NSSWITCH);
    }),
  );
}

function serviceEndpoints(topo: Topology, cluster: NetnsCluster): ServiceEndpoints[] {
  const dnsEps = cluster.dnsPods.map((p) => ({ ip: p.ip, port: 53 }));
  return [
    { portName: 'kube-system/kube-dns:dns', clusterIP: topo.dns.clusterIP, port: 53, protocol: 'udp', endpoints: dnsEps },
    { portName: 'kube-system/kube-dns:dns-tcp', clusterIP: topo.dns.clusterIP, port: 53, protocol: 'tcp', endpoints: dnsEps },
    ...topo.services.map((s) => ({
      portName: `${s.namespace}/${s.name}:${s.protocol === 'TCP' ? 'http' : 'udp'}`,
      clusterIP: s.clusterIP,
      port: s.port,
      protocol: s.protocol.toLowerCase() as 'tcp' | 'udp',
      endpoints: cluster.serverPods.filter((p) => p.name.startsWith(`${s.name}-`)).map((p) => ({ ip: p.ip, port: s.targetPort })),
    })),
  ];
}

/**
 * Ready = every replica answers a client pod directly across the overlay, and the ClusterIP answers. One dig
 * asks every server that has not answered yet (+identify names the server of each answer).
 */
async function waitForDns(cluster: NetnsCluster): Promise<void> {
  const client = Object.values(cluster.clients)[0];
  if (!client) return;
  const name = clusterRecords(cluster.topology)[1]!.name;
  const want = cluster.topology.dns.clusterIP;
  let pending = [...cluster.dnsPods.map((p) => p.ip), want];
  await pRetry(
    async () => {
      // `NAME @SERVER` per query: dig binds a server to the query whose name precedes it.
      const argv = ['dig', '+time=1', '+tries=1', '+short', '+identify', ...pending.flatMap((s) => [name, `@${s}`])];
      const r = await client.exec(argv, { nothrow: true, timeoutMs: 5000 + 1000 * pending.length });
      const answered = new Set([...r.stdout.matchAll(/^(\S+) from server (\S+) in /gm)].filter((m) => m[1] === want).map((m) => m[2]));
      pending = pending.filter((s) => !answered.has(s));
      if (pending.length) throw new Error(`no answer for ${name} from ${pending.join(', ')}: ${r.stdout.trim().split('\n').at(-1) || r.stderr.trim() || `exit ${r.exitCode}`}`);
    },
    { retries: 40, minTimeout: 50, maxTimeout: 250, factor: 1.5 },
  ).catch((e: Error) => {
    throw new VxError('E_DNS_NOT_READY', `cluster DNS not ready: ${e.message}`);
  });
}
