import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ROOT } from '../../config/suite.ts';
import type { Topology } from '../../config/topology.ts';
import { RunError, VxError } from '../../errors.ts';
import { shell as realShell, type Shell } from '../../exec/shell.ts';
import type { Capabilities, Cluster, ClientPod, ClusterNode, Libc, Pod, ProbeTarget, Provider, RunRef, UpOptions } from '../provider.ts';
import { installNodeBinaries, NODE_VXPROBE } from './cni.ts';
import { DEFAULT_K8S_VERSION, KIND_VERSION, kindClusterName, kindConfigYaml, kindNodeNames, kindNotes, nodeImage, NODE_LABEL } from './config.ts';
import { internalIP, isReady, kubectl, kubectlJson, type KindContext, type KList, type KNode, type KPod, type PodExec, type PodRef } from './context.ts';
import { ensureServices, installNodeLocalDns, removeNodeLocalDns, scaleAndSpreadCoreDns, waitForServiceDns } from './dns.ts';
import { defaultCacheDir, pinnedManifests, type KindManifests } from './fetch-pinned.ts';
import { KindClusterDns } from './cluster-dns.ts';
import { applyFlannel, DEFAULT_FLANNEL_VERSION, flannelPin, KindFlannel } from './flannel.ts';
import { clientPodManifest, clientPodName, POD_NAMESPACE, PROBE_CONTEXT, PROBE_DOCKERFILES, probeImage, toYamlStream } from './manifests.ts';
import { clientNodePodExec, KindClientPod, KindNode, KindPod } from './node.ts';
import { KindNodeLocalDns } from './nodelocaldns.ts';

export interface KindProviderOptions {
  /** Kubernetes version of the node image (table in config.ts); default $VXCHAOS_K8S_VERSION or the newest. */
  k8sVersion?: string;
  /** flannel version with a pinned manifest (pins.ts); default $VXCHAOS_FLANNEL_VERSION or the newest. */
  flannelVersion?: string;
  /** Where verified downloads of the pinned manifests are kept; default $VXCHAOS_CACHE_DIR or ~/.cache/vxchaos/manifests. */
  cacheDir?: string;
  /** Where the applied manifests come from; default: downloaded from their pins, sha256-checked, cached. */
  manifests?: KindManifests;
  /** Where run directories go (the CLI's --out); the run's is <outDir>/<runId>. Default reports/. */
  outDir?: string;
  /** The run's report directory outright (tests, plans); kind-logs/ and kind/ go under it. */
  reportDir?: string;
  /** Keep the cluster after the run (and after a failure) for a person to look at; default $VXCHAOS_KEEP=1. */
  keep?: boolean;
  shell?: Shell;
  /** How pods are exec'd once the kubeconfig exists; default @kubernetes/client-node Exec. */
  podExec?: (kubeconfig: string, context: string) => PodExec;
  /** Write the kind config, kubeconfig directory and CNI binary to disk (false in dry-run plans). */
  writeFiles?: boolean;
  /** PATH lookup, replaceable in tests. */
  which?: (tool: string) => string | undefined;
}

export const KIND_TOOLS: readonly { tool: string; hint: string }[] = [
  { tool: 'docker', hint: 'Docker Engine (GitHub-hosted Ubuntu runners have it): https://docs.docker.com/engine/install/' },
  {
    tool: 'kind',
    hint: `kind ${KIND_VERSION}: \`go install sigs.k8s.io/kind@${KIND_VERSION}\` or the release binary from https://github.com/kubernetes-sigs/kind/releases/tag/${KIND_VERSION} (Actions: helm/kind-action with version: ${KIND_VERSION})`,
  },
  { tool: 'kubectl', hint: 'kubectl matching the node image\'s minor ±1: https://kubernetes.io/docs/tasks/tools/ (GitHub-hosted runners have it)' },
];

export class KindPreflightError extends VxError {
  constructor(problems: readonly string[]) {
    super('E_KIND_PREFLIGHT', `the kind provider cannot run here:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'KindPreflightError';
  }
}

function whichOnPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return join(dir, tool);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Probe images a run needs: glibc always (it carries the CNI bridge plugin), musl for clients or servers. */
export function neededImages(topology: Topology, clients: readonly Libc[]): Libc[] {
  const servers = topology.services.some((s) => s.endpoints.length > 0);
  return (['musl', 'glibc'] as const).filter((l) => l === 'glibc' || clients.includes(l) || (l === 'musl' && servers));
}

export class KindProvider implements Provider {
  readonly name = 'kind';
  readonly capabilities: Capabilities = {
    symptomsGuaranteed: false,
    ownsKubeProxyChains: false,
    forwardPolicies: ['sequential', 'random', 'health-checked'],
    privateNodeFiles: false,
    servesUpstreamNames: false,
  };

  async list(): Promise<RunRef[]> {
    const r = await this.shell(['kind', 'get', 'clusters'], { nothrow: true });
    return r.stdout.split('\n').filter((c) => c.startsWith('vxc-')).map((c) => ({ runId: c.slice(4), what: `kind cluster ${c}` }));
  }

  async down(runId?: string): Promise<{ removed: string[]; problems: string[] }> {
    if (!this.which('kind')) return { removed: [], problems: [] };
    if (runId === undefined) return { removed: await downAllKind(this.shell), problems: [] };
    const name = kindClusterName(runId);
    const r = await this.shell(['kind', 'delete', 'cluster', '--name', name], { nothrow: true, timeoutMs: 120_000 });
    return r.exitCode === 0 ? { removed: [name], problems: [] } : { removed: [], problems: [`kind delete cluster --name ${name}: ${r.stderr.trim()}`] };
  }
  readonly k8sVersion: string;
  readonly flannelVersion: string;
  private readonly shell: Shell;
  private readonly which: (tool: string) => string | undefined;
  private readonly manifests: KindManifests;

  constructor(private readonly opts: KindProviderOptions = {}) {
    this.k8sVersion = opts.k8sVersion ?? process.env.VXCHAOS_K8S_VERSION ?? DEFAULT_K8S_VERSION;
    this.flannelVersion = opts.flannelVersion ?? process.env.VXCHAOS_FLANNEL_VERSION ?? DEFAULT_FLANNEL_VERSION;
    this.shell = opts.shell ?? realShell;
    this.which = opts.which ?? whichOnPath;
    this.manifests = opts.manifests ?? pinnedManifests({ cacheDir: opts.cacheDir ?? defaultCacheDir() });
    // Unknown versions fail here, before anything is built or downloaded.
    nodeImage(this.k8sVersion);
    flannelPin(this.flannelVersion);
  }

  async preflight(): Promise<void> {
    const problems = KIND_TOOLS.filter((t) => !this.which(t.tool)).map((t) => `${t.tool} is not on PATH; install ${t.hint}`);
    if (problems.length) throw new KindPreflightError(problems);
    const info = await this.shell(['docker', 'info', '--format', '{{.ServerVersion}}'], { nothrow: true, timeoutMs: 20_000 });
    if (info.exitCode !== 0) {
      throw new KindPreflightError([`the Docker daemon is not reachable (docker info: ${(info.stderr || info.stdout).trim().split('\n')[0]}); start it or check DOCKER_HOST`]);
    }
    const kind = await this.shell(['kind', 'version'], { nothrow: true });
    if (!kind.stdout.includes(KIND_VERSION)) {
      // kind supports node images only with the release that built them; other releases are best effort.
      process.stderr.write(`warning: node images are pinned for kind ${KIND_VERSION}; found: ${kind.stdout.trim() || 'unknown'}\n`);
    }
  }

  async up(topology: Topology, opts: UpOptions): Promise<Cluster> {
    const cluster = kindClusterName(opts.runId);
    const reportDir = this.opts.reportDir ?? join(this.opts.outDir ?? join(ROOT, 'reports'), opts.runId);
    const workDir = join(reportDir, 'kind');
    const kubeconfig = join(workDir, 'kubeconfig');
    const context = `kind-${cluster}`;
    const writeFiles = this.opts.writeFiles ?? true;
    let podExec: PodExec | undefined;
    const factory = this.opts.podExec ?? clientNodePodExec;
    const ctx: KindContext = {
      shell: this.shell,
      cluster,
      kubeconfig,
      // Created on first use: the kubeconfig exists only after `kind create cluster`.
      podExec: (pod, argv, o) => (podExec ??= factory(kubeconfig, context))(pod, argv, o),
    };
    const step = async <T>(title: string, fn: () => Promise<T>): Promise<T> => {
      opts.onStep?.(title, 'start');
      const t0 = Date.now();
      const r = await fn();
      opts.onStep?.(title, 'done', Date.now() - t0);
      return r;
    };
    const images = neededImages(topology, opts.clients);
    const image = (l: Libc) => probeImage(l);
    const containers = kindNodeNames(cluster, topology.nodes.length);
    const containerOf = new Map(topology.nodes.map((n, i) => [n.name, containers[i]!]));
    const nodeOf = (k8sNode: string) => topology.nodes[containers.indexOf(k8sNode)]?.name;
    const config = kindConfigYaml(topology, { runId: opts.runId, k8sVersion: this.k8sVersion });

    // First: a download or sha256 failure should stop the run before anything is built or created.
    const flannelManifest = await step(`fetch and verify the pinned kube-flannel ${this.flannelVersion} manifest`, () =>
      this.manifests.flannel(topology, this.flannelVersion),
    );

    await step('build probe images', async () => {
      for (const l of images) {
        await this.shell(['docker', 'build', '-f', PROBE_DOCKERFILES[l], '-t', image(l), PROBE_CONTEXT], { timeoutMs: 900_000 });
      }
    });

    const kc: KindCluster = new KindCluster(ctx, topology, opts.runId, {
      reportDir,
      keep: this.opts.keep ?? process.env.VXCHAOS_KEEP === '1',
      k8sVersion: this.k8sVersion,
      flannelVersion: this.flannelVersion,
      containerOf,
      manifests: this.manifests,
    });
    try {
      await step(`create kind cluster ${cluster}`, async () => {
        if (writeFiles) {
          mkdirSync(workDir, { recursive: true });
          // The exact config and flannel manifest, for the report; kind and kubectl read them from stdin.
          writeFileSync(join(workDir, 'kind-config.yaml'), config);
          writeFileSync(join(workDir, 'kube-flannel.yml'), flannelManifest);
        }
        // --retain: on failure the node containers stay for `kind export logs`; down() deletes them.
        await this.shell(['kind', 'create', 'cluster', '--name', cluster, '--config', '-', '--kubeconfig', kubeconfig, '--retain'], { input: config, timeoutMs: 600_000 });
      });
      await step('allow pods on the control-plane node', async () => {
        // The topology's node-1 is kind's control plane; clients and DNS replicas may live there.
        const argv = kubectl(ctx, 'taint', 'nodes', containers[0]!, 'node-role.kubernetes.io/control-plane:NoSchedule-');
        const r = await this.shell(argv, { nothrow: true });
        // A one-node kind cluster has no such taint (kind removes it itself): that is the wanted state.
        if (r.exitCode !== 0 && !/not found/.test(r.stderr)) throw new RunError(argv, r.exitCode, r.stdout, r.stderr);
      });
      await step('install the CNI bridge plugin and vxprobe on every node', () => installNodeBinaries(ctx, image('glibc'), containers, workDir));
      await step(`apply flannel ${this.flannelVersion}`, async () => {
        await applyFlannel(ctx, flannelManifest);
        await kc.flannel.waitForLeases(topology.nodes.map((n) => n.name));
      });
      const dnsPods = await step(`scale CoreDNS to ${topology.dns.replicas.length} replicas on ${topology.dns.replicas.join(', ')}`, () =>
        scaleAndSpreadCoreDns(ctx, topology, nodeOf),
      );
      await step('load probe images into the nodes', async () => {
        await this.shell(['kind', 'load', 'docker-image', ...images.map(image), '--name', cluster], { timeoutMs: 600_000 });
      });
      await step('create services and endpoint pods', () => ensureServices(ctx, topology, opts.runId, image('musl')));
      await step(`create client pods (${opts.clients.join(', ') || 'none'})`, async () => {
        if (opts.clients.length === 0) return;
        await this.shell(kubectl(ctx, 'apply', '-f', '-'), { input: toYamlStream(opts.clients.map((l) => clientPodManifest(topology, l, { runId: opts.runId }))), timeoutMs: 60_000 });
        await this.shell(kubectl(ctx, '-n', POD_NAMESPACE, 'wait', '--for=condition=Ready', ...opts.clients.map((l) => `pod/${clientPodName(l)}`), '--timeout=180s'), { timeoutMs: 190_000 });
      });
      await step('read back nodes and pods', async () => {
        await kc.discover(dnsPods, opts.clients);
      });
      await step('check that the services resolve from every client', async () => {
        for (const c of Object.values(kc.clients)) await waitForServiceDns(topology, c);
      });
      return kc;
    } catch (e) {
      // The original failure is what the user must see; a failing cleanup is only reported beside it.
      await kc.down({ exportLogs: true }).catch((cleanup: unknown) => {
        process.stderr.write(`cleanup after the failed kind run also failed: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}\n`);
      });
      throw e;
    }
  }
}

interface KindClusterOptions {
  reportDir: string;
  keep: boolean;
  k8sVersion: string;
  flannelVersion: string;
  containerOf: ReadonlyMap<string, string>;
  manifests: KindManifests;
}

export class KindCluster implements Cluster {
  readonly provider = 'kind';
  readonly flannel: KindFlannel;
  readonly clusterDns: KindClusterDns;
  readonly nodeLocalDns: KindNodeLocalDns;
  nodes: readonly KindNode[] = [];
  dnsPods: readonly Pod[] = [];
  private readonly clientPods: Partial<Record<Libc, KindClientPod>> = {};
  private downed = false;

  constructor(
    readonly ctx: KindContext,
    readonly topology: Topology,
    readonly runId: string,
    private readonly opts: KindClusterOptions,
  ) {
    this.flannel = new KindFlannel(ctx, opts.containerOf);
    this.clusterDns = new KindClusterDns(ctx, runId);
    this.nodeLocalDns = new KindNodeLocalDns(ctx, topology, opts.manifests, () => this.nodes);
  }

  get name(): string {
    return this.ctx.cluster;
  }

  get enterHint(): string {
    return `docker exec -it ${this.opts.containerOf.values().next().value ?? '<node>'} bash`;
  }

  /** kind's own log export of the whole cluster (nodes, kubelet, containerd, pods). */
  async collectLogs(dir: string): Promise<string[]> {
    const r = await this.ctx.shell(['kind', 'export', 'logs', dir, '--name', this.ctx.cluster], { nothrow: true, timeoutMs: 120_000 }).catch(() => undefined);
    return r?.exitCode === 0 ? [dir] : [];
  }

  get clients(): Readonly<Partial<Record<Libc, ClientPod>>> {
    return this.clientPods;
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new VxError('E_UNKNOWN_NODE', `unknown node "${name}" (nodes: ${this.nodes.map((x) => x.name).join(', ')})`);
    return n;
  }

  /** vxprobe as a host process in the node's network namespace (copied onto every node at bring-up). */
  nodeProbe(name: string): ProbeTarget {
    const node = this.node(name);
    return {
      name: node.name,
      probe: [NODE_VXPROBE],
      exec: (argv, o) => node.exec(argv, o),
      writeFile: (path, content) => node.writeFile(path, content),
      readFile: (path) => node.readFile(path),
    };
  }

  private nodeOf(k8sNode: string | undefined): string {
    for (const [topo, container] of this.opts.containerOf) if (container === k8sNode) return topo;
    return k8sNode ?? '?';
  }

  /** Builds the seam objects from what the API server reports (addresses and subnets are kind's). */
  async discover(dnsPods: readonly KPod[], clients: readonly Libc[]): Promise<void> {
    const list = await kubectlJson<KList<KNode>>(this.ctx, ['get', 'nodes']);
    this.nodes = [...this.opts.containerOf].map(([topo, container]) => {
      const k = list.items.find((n) => n.metadata.name === container);
      const ip = k && internalIP(k);
      if (!k || !ip || !k.spec.podCIDR) throw new VxError('E_KIND_NODE', `node ${container} (${topo}) has no InternalIP or podCIDR yet`);
      if (k.metadata.labels?.[NODE_LABEL] !== topo) throw new VxError('E_KIND_NODE', `node ${container} is labelled ${NODE_LABEL}=${k.metadata.labels?.[NODE_LABEL]}, expected ${topo}`);
      return new KindNode(this.ctx, topo, container, ip, k.spec.podCIDR);
    });
    this.dnsPods = dnsPods.map((p) => new KindPod(this.ctx.podExec, { namespace: 'kube-system', name: p.metadata.name, container: 'coredns' }, this.nodeOf(p.spec.nodeName), p.status.podIP ?? '', 'dns'));
    for (const libc of clients) await this.readClient(libc);
  }

  private async readClient(libc: Libc): Promise<KindClientPod> {
    const ref: PodRef = { namespace: POD_NAMESPACE, name: clientPodName(libc), container: 'probe' };
    const p = await kubectlJson<KPod>(this.ctx, ['-n', ref.namespace, 'get', 'pod', ref.name]);
    if (!isReady(p) || !p.status.podIP) throw new VxError('E_KIND_POD', `client pod ${ref.name} is not Ready`);
    const pod = new KindClientPod(this.ctx.podExec, ref, this.nodeOf(p.spec.nodeName), p.status.podIP, libc);
    this.clientPods[libc] = pod;
    return pod;
  }

  /**
   * Recreate a client pod with a mitigation's resolver settings in its spec (dnsConfig), the way a
   * workload owner would deploy it; the alternative, rewriting /etc/resolv.conf through writeFile, also works.
   */
  async recreateClient(libc: Libc, mitigation: string): Promise<ClientPod> {
    const manifest = toYamlStream([clientPodManifest(this.topology, libc, { runId: this.runId, mitigation })]);
    await this.ctx.shell(kubectl(this.ctx, '-n', POD_NAMESPACE, 'delete', 'pod', clientPodName(libc), '--ignore-not-found', '--wait=true', '--timeout=60s'), { timeoutMs: 70_000 });
    await this.ctx.shell(kubectl(this.ctx, 'apply', '-f', '-'), { input: manifest, timeoutMs: 60_000 });
    await this.ctx.shell(kubectl(this.ctx, '-n', POD_NAMESPACE, 'wait', '--for=condition=Ready', `pod/${clientPodName(libc)}`, '--timeout=180s'), { timeoutMs: 190_000 });
    return this.readClient(libc);
  }

  /** Only apply / delete the addon (no readiness per node): nodeLocalDns.enable() / disable() is the control. */
  installNodeLocalDns(): Promise<void> {
    return installNodeLocalDns(this.ctx, this.topology, this.opts.manifests);
  }

  removeNodeLocalDns(): Promise<void> {
    return removeNodeLocalDns(this.ctx, this.topology, this.opts.manifests);
  }

  kubectl(...args: string[]): string[] {
    return kubectl(this.ctx, ...args);
  }

  async describe(): Promise<Record<string, string>> {
    const first = this.nodes[0];
    const kernel = first ? (await first.exec(['uname', '-r'], { nothrow: true })).stdout.trim() : '';
    const kind = (await this.ctx.shell(['kind', 'version'], { nothrow: true })).stdout.trim();
    const facts: Record<string, string> = {
      provider: 'kind',
      kernel,
      kind,
      'kind.cluster': this.ctx.cluster,
      'kind.nodeImage': nodeImage(this.opts.k8sVersion).image,
      'flannel.version': this.opts.flannelVersion,
      'kube-proxy': 'iptables mode, from the node image',
    };
    kindNotes(this.topology).forEach((n, i) => (facts[`kind.note.${i + 1}`] = n));
    return facts;
  }

  /** Node and pod logs of every component, for the report of a failed run. */
  async exportLogs(): Promise<string> {
    const dir = join(this.opts.reportDir, 'kind-logs');
    await this.ctx.shell(['kind', 'export', 'logs', dir, '--name', this.ctx.cluster], { nothrow: true, timeoutMs: 300_000 });
    return dir;
  }

  /** Idempotent. Deletes the cluster unless asked to keep it; exports logs first when the run failed. */
  async down(opts: { exportLogs?: boolean } = {}): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    if (opts.exportLogs) await this.exportLogs();
    if (this.opts.keep) {
      process.stderr.write(
        `kept kind cluster ${this.ctx.cluster}: kubectl --kubeconfig ${this.ctx.kubeconfig} get pods -A; ` +
          `delete it with: kind delete cluster --name ${this.ctx.cluster}\n`,
      );
      return;
    }
    await this.ctx.shell(['kind', 'delete', 'cluster', '--name', this.ctx.cluster, '--kubeconfig', this.ctx.kubeconfig], { timeoutMs: 300_000 });
  }
}

/** For `vxchaos down --all`: every kind cluster and CNI carrier container a vxchaos run left behind. */
export async function downAllKind(shell: Shell = realShell): Promise<string[]> {
  const list = await shell(['kind', 'get', 'clusters'], { nothrow: true });
  const clusters = list.stdout.split('\n').map((s) => s.trim()).filter((s) => s.startsWith('vxchaos-'));
  for (const name of clusters) await shell(['kind', 'delete', 'cluster', '--name', name], { timeoutMs: 300_000 });
  const carriers = await shell(['docker', 'ps', '-aq', '--filter', 'label=vxchaos.io/run'], { nothrow: true });
  const ids = carriers.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  if (ids.length) await shell(['docker', 'rm', '-f', ...ids], { nothrow: true });
  return clusters;
}
