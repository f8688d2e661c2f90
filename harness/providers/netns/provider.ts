import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pRetry from 'p-retry';
import { ROOT } from '../../config/suite.ts';
import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import { downAll, Ledger } from '../../exec/ledger.ts';
import { shell, type Shell } from '../../exec/shell.ts';
import { requireRoot, requireTools } from '../../doctor.ts';
import type { Capabilities, Cluster, Libc, ProbeTarget, Provider, RunRef, UpOptions } from '../provider.ts';
import { addPod } from './cni.ts';
import { clusterRecords, dnsmasqArgv, NetnsClusterDns } from './dns.ts';
import { FlannelEmulator } from './flannel.ts';
import { natTable, type ServiceEndpoints } from './kube-proxy.ts';
import { makeFabric, makeNode, netnsName } from './network.ts';
import { NetnsNodeLocalDns } from './nodelocaldns.ts';
import { NetnsClientPod, NetnsPod, type NetnsContext, type NetnsNode, type NetnsTarget } from './node.ts';

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

  constructor(
    readonly runId: string,
    readonly topology: Topology,
    readonly ctx: NetnsContext,
  ) {
    this.flannel = new FlannelEmulator(topology, this.nodes);
    this.clusterDns = new NetnsClusterDns(topology, this.dnsPods, () => this.fabric, ctx.ledger.dir);
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

  async describe(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const q = await this.ctx.sh(['dpkg-query', '-W', '-f', '${Package} ${Version}\\n', 'libc6', 'musl', 'unbound', 'dnsmasq-base', 'iptables', 'containernetworking-plugins', 'iproute2', 'conntrack'], { nothrow: true });
    for (const line of q.stdout.split('\n').filter(Boolean)) {
      const [pkg, ver] = line.split(' ');
      if (pkg && ver) out[pkg] = ver;
    }
    const ipt = await this.ctx.sh(['iptables', '--version'], { nothrow: true });
    out['iptables-backend'] = /\((\w+)\)/.exec(ipt.stdout)?.[1] ?? 'unknown';
    return out;
  }

  get enterHint(): string {
    return `ip netns exec ${netnsName(this.runId, this.nodes[0]?.name ?? 'node-1')} bash`;
  }

  async collectLogs(dir: string): Promise<string[]> {
    const { writeFile } = await import('node:fs/promises');
    const written: string[] = [];
    const views: [string, string[]][] = [
      ['neigh', ['ip', 'neigh']],
      ['fdb', ['bridge', 'fdb', 'show', 'dev', 'flannel.1']],
      ['routes', ['ip', 'route']],
      ['iptables', ['iptables-save']],
      ['nft', ['nft', 'list', 'ruleset']],
      ['conntrack-stats', ['conntrack', '-S']],
    ];
    for (const n of this.nodes) {
      const parts: string[] = [];
      for (const [name, argv] of views) {
        const r = await n.exec(argv, { nothrow: true, timeoutMs: 10_000 }).catch((e: Error) => ({ stdout: '', stderr: e.message }));
        parts.push(`### ${name}: ${argv.join(' ')}\n${r.stdout}${r.stderr}`);
      }
      const file = join(dir, `${n.name}.txt`);
      await writeFile(file, parts.join('\n'));
      written.push(file);
    }
    return written;
  }

  async down(): Promise<void> {
    const problems = await this.ctx.ledger.teardown();
    if (problems.length) throw new VxError('E_TEARDOWN', `teardown left problems:\n${problems.join('\n')}`);
  }
}

export class NetnsProvider implements Provider {
  readonly name = 'netns';
  readonly capabilities: Capabilities = {
    symptomsGuaranteed: true,
    ownsKubeProxyChains: true,
    // unbound has no ordered forwarding (see dns.ts)
    forwardPolicies: ['random', 'health-checked'],
    privateNodeFiles: true,
    servesUpstreamNames: true,
  };
  constructor(private readonly sh: Shell = shell) {}

  async list(): Promise<RunRef[]> {
    return Ledger.runs().map((runId) => ({ runId, what: `${Ledger.load(runId).length} ledger entries` }));
  }

  async down(runId?: string): Promise<{ removed: string[]; problems: string[] }> {
    const r = await downAll(undefined, runId);
    return { removed: [...r.runs, ...r.namespaces], problems: r.problems };
  }

  async preflight(): Promise<void> {
    requireRoot('the netns provider');
    await requireTools('netns');
    for (const [libc, bin] of Object.entries(PROBE_BINARIES)) {
      if (!existsSync(bin)) throw new VxError('E_PROBE_MISSING', `the ${libc} probe is not built (${bin}); run \`npm run setup\``);
    }
  }

  async up(topo: Topology, opts: UpOptions): Promise<Cluster> {
    const ctx: NetnsContext = { sh: this.sh, ledger: new Ledger(opts.runId) };
    const cluster = new NetnsCluster(opts.runId, topo, ctx);
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      opts.onStep?.(name, 'start');
      const r = await fn();
      opts.onStep?.(name, 'done', Date.now() - t0);
      return r;
    };
    try {
      const fabric = await step('underlay fabric', () => makeFabric(ctx, opts.runId, topo));
      cluster.fabric = fabric;
      await step(`nodes (${topo.nodeSpecs.length})`, async () => {
        for (const spec of topo.nodeSpecs) cluster.nodes.push(await makeNode(ctx, opts.runId, topo, fabric, spec));
      });
      await step('flanneld (flannel.1, VtepMAC leases, peers)', () => cluster.flannel.startAll());
      await step('pods via CNI bridge + host-local', async () => {
        for (const nodeName of topo.dns.replicas) {
          const node = cluster.node(nodeName);
          const name = `coredns-${nodeName}`;
          const netns = netnsName(opts.runId, `${nodeName}-dns`);
          const { ip } = await addPod(ctx, topo, node, netns, name);
          cluster.dnsPods.push(new NetnsPod(name, netns, ctx, nodeName, ip, 'dns'));
        }
        for (const svc of topo.services) {
          for (const nodeName of svc.endpoints) {
            const node = cluster.node(nodeName);
            const name = `${svc.name}-${nodeName}`;
            const netns = netnsName(opts.runId, `${nodeName}-${svc.name}`);
            const { ip } = await addPod(ctx, topo, node, netns, name);
            cluster.serverPods.push(new NetnsPod(name, netns, ctx, nodeName, ip, 'server'));
          }
        }
        const clientNode = cluster.node(topo.clients.node);
        for (const libc of opts.clients) {
          const name = `client-${libc}`;
          const netns = netnsName(opts.runId, `${clientNode.name}-${libc}`);
          const { ip } = await addPod(ctx, topo, clientNode, netns, name);
          const pod = new NetnsClientPod(name, netns, ctx, clientNode.name, ip, libc, [PROBE_BINARIES[libc]]);
          await pod.writeFile('/etc/resolv.conf', podResolvConf(topo));
          await pod.writeFile('/etc/hosts', POD_HOSTS);
          await pod.writeFile('/etc/nsswitch.conf', POD_NSSWITCH);
          cluster.clients[libc] = pod;
        }
      });
      await step('kube-proxy (iptables)', async () => {
        const services = serviceEndpoints(topo, cluster);
        await Promise.all(cluster.nodes.map((n) => n.exec(['iptables-restore', '-w', '5'], { input: natTable(topo, n.podSubnet, services) })));
      });
      if (cluster.serverPods.length) {
        await step(`service endpoints (${cluster.serverPods.length})`, async () => {
          for (const pod of cluster.serverPods) {
            const svc = topo.services.find((s) => pod.name.startsWith(`${s.name}-`))!;
            await pod.spawn([PROBE_BINARIES.glibc, '-L', String(svc.targetPort)], { name: 'server' });
          }
        });
      }
      await step('upstream DNS (dnsmasq)', async () => {
        await fabric.spawn(dnsmasqArgv(topo, topo.underlayGateway), { name: 'dnsmasq' });
      });
      await step(`cluster DNS (${cluster.dnsPods.length} unbound replicas)`, async () => {
        await cluster.clusterDns.start();
        await waitForDns(cluster);
      });
      return cluster;
    } catch (e) {
      await cluster.down().catch(() => undefined);
      throw e;
    }
  }
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

/** Ready = every replica answers a client pod directly across the overlay, and the ClusterIP answers. */
async function waitForDns(cluster: NetnsCluster): Promise<void> {
  const client = Object.values(cluster.clients)[0];
  if (!client) return;
  const name = clusterRecords(cluster.topology)[1]!.name;
  const servers = [...cluster.dnsPods.map((p) => p.ip), cluster.topology.dns.clusterIP];
  for (const server of servers) {
    await pRetry(
      async () => {
        const r = await client.exec(['dig', '+time=1', '+tries=1', '+short', `@${server}`, name], { nothrow: true, timeoutMs: 5000 });
        if (r.stdout.trim() !== cluster.topology.dns.clusterIP) throw new Error(`dig @${server} ${name}: ${r.stdout.trim() || r.stderr.trim() || `exit ${r.exitCode}`}`);
      },
      { retries: 40, minTimeout: 50, maxTimeout: 250, factor: 1.5 },
    ).catch((e: Error) => {
      throw new VxError('E_DNS_NOT_READY', `cluster DNS not ready: ${e.message}`);
    });
  }
}
