import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ROOT } from '../../config/suite.ts';
import type { Topology } from '../../config/topology.ts';
import { RunError, VxError } from '../../errors.ts';
import { shell as realShell, type Shell } from '../../exec/shell.ts';
import type { Capabilities, Cluster, ClientPod, ClusterNode, Libc, Pod, ProbeTarget, Provider, RunRef, UpOptions } from '../provider.ts';
import { installNodeBinaries, NODE_VXPROBE } from './cni.ts';
import { DEFAULT_K8S_VERSION, KIND_VERSION, kindClusterName, kindConfigYaml, kindNodeNames, kindNotes, nodeImage, NODE_LABEL } from './config.ts';
import { internalIP, isReady, kubectl, kubectlJson, type KindContext, type KList, type KNode, type KPod, type PodExec, type PodRef } from './context.ts';
import { ensureServices, installNodeLocalDns, removeNodeLocalDns, scaleAndSpreadCoreDns, settledCoreDns, waitForServiceDns } from './dns.ts';
import { defaultCacheDir, pinnedManifests, type KindManifests } from './fetch-pinned.ts';
import { deployUpstreamDns, forwardToUpstream, KindClusterDns, UPSTREAM_DNS } from './cluster-dns.ts';
import { applyFlannel, DEFAULT_FLANNEL_VERSION, flannelPin, KindFlannel } from './flannel.ts';
import { clientPodManifest, clientPodName, POD_NAMESPACE, PROBE_CONTEXT, PROBE_DOCKERFILES, probeImage, toYamlStream } from './manifests.ts';
import { clientNodePodExec, KindClientPod, KindNode, KindPod } from './node.ts';
import { writeFile as writeFileAsync, mkdir } from 'node:fs/promises';
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
  /**
   * Where a run's kubeconfig goes: never under the report directory, which CI uploads. Default
   * ~/.kube/vxchaos (kind's own default is ~/.kube/config; that file is not touched).
   */
  kubeconfigDir?: string;
}

/** kind nodes are containers on the runner's kernel with the real components; what that allows, once. */
export const KIND_CAPABILITIES: Capabilities = {
  // Real flanneld, CoreDNS and kube-proxy: a symptom that does not come is a finding about their versions.
  symptomsGuaranteed: false,
  // kube-proxy writes KUBE-POSTROUTING afresh on every sync (30 s, and on every Service change).
  ownsKubeProxyChains: false,
  forwardPolicies: ['sequential', 'random', 'health-checked'],
  // Node files are written to the node's /tmp and bind-mounted in a private mount namespace (node.ts).
  privateNodeFiles: true,
  // dnsmasq in the upstream DNS pod serves dns.upstream; CoreDNS forwards to it (cluster-dns.ts).
  servesUpstreamNames: true,
  // A kind cluster is minutes and gigabytes to build: one per run.
  clustersAtOnce: 1,
};

export const KIND_CLUSTER_PREFIX = 'vxchaos-';

export function defaultKubeconfigDir(): string {
  return join(homedir(), '.kube', 'vxchaos');
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
  readonly capabilities: Capabilities = KIND_CAPABILITIES;
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
    const kubeconfigDir = this.opts.kubeconfigDir ?? defaultKubeconfigDir();
    const kubeconfig = join(kubeconfigDir, `${cluster}.yaml`);
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
        // No attestation manifests: with Docker 29's containerd image store they break `kind load` (kind#3795).
        await this.shell(['docker', 'build', '--provenance=false', '-f', PROBE_DOCKERFILES[l], '-t', image(l), PROBE_CONTEXT], { timeoutMs: 900_000 });
      }
    });

    const kc: KindCluster = new KindCluster(ctx, topology, opts.runId, {
      reportDir,
      keep: this.opts.keep ?? process.env.VXCHAOS_KEEP === '1',
      k8sVersion: this.k8sVersion,
      flannelVersion: this.flannelVersion,
      containerOf,
      manifests: this.manifests,
      kubeconfigDir,
      writeFiles,
    });
    try {
      await step(`create kind cluster ${cluster}`, async () => {
        if (writeFiles) {
          mkdirSync(workDir, { recursive: true });
          mkdirSync(kubeconfigDir, { recursive: true, mode: 0o700 });
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
      await step('load probe images into the nodes', async () => {
        await this.shell(['kind', 'load', 'docker-image', ...images.map(image), '--name', cluster], { timeoutMs: 600_000 });
      });
      await step(`upstream DNS (dnsmasq) serving ${Object.keys(topology.dns.upstream).join(', ') || 'no names'}`, async () => {
        kc.upstream = await deployUpstreamDns(ctx, topology, opts.runId);
      });
      const dnsPods = await step(`CoreDNS: forward to the upstream DNS, ${topology.dns.replicas.length} replicas on ${topology.dns.replicas.join(', ')}`, async () => {
        // Before the replicas roll out, so the new pods start with it.
        await forwardToUpstream(ctx, kc.upstream!);
        return scaleAndSpreadCoreDns(ctx, topology, nodeOf);
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
      await kc.down({ collectLogs: opts.logsDir ?? join(reportDir, 'kind-logs') }).catch((cleanup: unknown) => {
        process.stderr.write(`cleanup after the failed kind run also failed: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}\n`);
      });
      throw e;
    }
  }

  /** kind clusters of vxchaos runs on this machine (kept with --keep, or left by a crash). */
  async list(): Promise<RunRef[]> {
    // A machine without kind has no kind runs to list or remove.
    if (!this.which('kind')) return [];
    return (await vxchaosClusters(this.shell)).map((name) => ({ runId: name.slice(KIND_CLUSTER_PREFIX.length), what: `kind cluster ${name}` }));
  }

  /** One run's cluster (by run id) or every vxchaos cluster, with the CNI carrier containers and kubeconfigs. */
  async down(runId?: string): Promise<{ removed: string[]; problems: string[] }> {
    if (!this.which('kind')) return { removed: [], problems: [] };
    const all = await vxchaosClusters(this.shell);
    const clusters = runId === undefined ? all : all.filter((c) => c === kindClusterName(runId));
    const removed: string[] = [];
    const problems: string[] = [];
    for (const name of clusters) {
      const r = await this.shell(['kind', 'delete', 'cluster', '--name', name], { nothrow: true, timeoutMs: 300_000 });
      if (r.exitCode === 0) removed.push(name);
      else problems.push(`kind delete cluster --name ${name}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      rmSync(join(this.opts.kubeconfigDir ?? defaultKubeconfigDir(), `${name}.yaml`), { force: true });
    }
    const filter = runId === undefined ? 'label=vxchaos.io/run' : `label=vxchaos.io/run=${kindClusterName(runId)}`;
    const carriers = await this.shell(['docker', 'ps', '-aq', '--filter', filter], { nothrow: true });
    const ids = carriers.stdout.split('\n').map((x) => x.trim()).filter(Boolean);
    if (ids.length) {
      const r = await this.shell(['docker', 'rm', '-f', ...ids], { nothrow: true });
      if (r.exitCode !== 0) problems.push(`docker rm -f ${ids.join(' ')}: ${r.stderr.trim()}`);
    }
    return { removed, problems };
  }
}

async function vxchaosClusters(shell: Shell): Promise<string[]> {
  const list = await shell(['kind', 'get', 'clusters'], { nothrow: true });
  return list.stdout.split('\n').map((x) => x.trim()).filter((x) => x.startsWith(KIND_CLUSTER_PREFIX));
}

interface KindClusterOptions {
  reportDir: string;
  keep: boolean;
  k8sVersion: string;
  flannelVersion: string;
  containerOf: ReadonlyMap<string, string>;
  manifests: KindManifests;
  kubeconfigDir: string;
  /** false in plans: commands are recorded, nothing is written to disk. */
  writeFiles: boolean;
}

export class KindCluster implements Cluster {
  readonly provider = 'kind';
  readonly flannel: KindFlannel;
  readonly clusterDns: KindClusterDns;
  readonly nodeLocalDns: KindNodeLocalDns;
  nodes: readonly KindNode[] = [];
  /** The CoreDNS replicas as last read: at discovery and again after every rollout has settled. */
  dnsPods: readonly Pod[] = [];
  /** The upstream DNS pod's address (its node's), which CoreDNS and node-cache forward external names to. */
  upstream?: string;
  private readonly clientPods: Partial<Record<Libc, KindClientPod>> = {};
  private downed = false;

  constructor(
    readonly ctx: KindContext,
    readonly topology: Topology,
    readonly runId: string,
    private readonly opts: KindClusterOptions,
  ) {
    this.flannel = new KindFlannel(ctx, opts.containerOf);
    this.clusterDns = new KindClusterDns(ctx, runId, () => this.refreshDnsPods());
    this.nodeLocalDns = new KindNodeLocalDns(ctx, topology, opts.manifests, () => this.nodes, { upstream: () => this.upstream });
  }

  /** `docker exec -it <node> bash`: the node container's namespaces are the node's. */
  get enterHint(): string {
    const [first, ...rest] = [...this.opts.containerOf.values()];
    return `docker exec -it ${first} bash   (other nodes: ${rest.join(', ') || 'none'}; pods: kubectl --kubeconfig ${this.ctx.kubeconfig} get pods -A -o wide)`;
  }

  /** Reads the CoreDNS replicas again once a rollout has settled (every pod is new after one). */
  async refreshDnsPods(): Promise<void> {
    const pods = await settledCoreDns(this.ctx, this.topology, (k) => this.topoName(k));
    this.setDnsPods(pods);
  }

  private setDnsPods(pods: readonly KPod[]): void {
    this.dnsPods = pods.map((p) => new KindPod(this.ctx.podExec, { namespace: 'kube-system', name: p.metadata.name, container: 'coredns' }, this.nodeOf(p.spec.nodeName), p.status.podIP ?? '', 'dns'));
  }

  private topoName(k8sNode: string): string | undefined {
    for (const [topo, container] of this.opts.containerOf) if (container === k8sNode) return topo;
    return undefined;
  }

  get name(): string {
    return this.ctx.cluster;
  }

  get clients(): Readonly<Partial<Record<Libc, ClientPod>>> {
    return this.clientPods;
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new VxError('E_UNKNOWN_NODE', `unknown node "${name}" (nodes: ${this.nodes.map((x) => x.name).join(', ')})`);
    return n;
  }

  /**
   * vxprobe as a host process in the node's network namespace (copied onto every node at bring-up). Files
   * written through it (the node's resolv.conf of node-resolve cells) are private to it: bind-mounted for
   * its own commands only, never written over the node's real files.
   */
  nodeProbe(name: string): ProbeTarget {
    const node = (this.node(name) as KindNode).view();
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
    this.setDnsPods(dnsPods);
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
    return installNodeLocalDns(this.ctx, this.topology, this.opts.manifests, this.upstream);
  }

  removeNodeLocalDns(): Promise<void> {
    return removeNodeLocalDns(this.ctx, this.topology, this.opts.manifests, this.upstream);
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
      'kind.upstreamDns': `dnsmasq pod ${UPSTREAM_DNS} on ${this.topology.nodes[0]?.name} (${this.upstream ?? 'not started'}): ${Object.keys(this.topology.dns.upstream).join(', ') || 'no names'}`,
    };
    kindNotes(this.topology).forEach((n, i) => (facts[`kind.note.${i + 1}`] = n));
    return facts;
  }

  /**
   * What a person needs to see why a cell or the bring-up failed: `kind export logs` (every node's journal,
   * kubelet, containerd and pod logs), each node's neighbour and FDB tables, iptables-save and conntrack -S,
   * and the CoreDNS, flannel and upstream DNS pod logs. Never the kubeconfig. Never throws.
   */
  async collectLogs(dir: string): Promise<string[]> {
    const written: string[] = [];
    const save = async (file: string, argv: readonly string[], opts: { timeoutMs?: number } = {}) => {
      try {
        const r = await this.ctx.shell(argv, { nothrow: true, timeoutMs: opts.timeoutMs ?? 60_000 });
        const path = join(dir, file);
        if (!this.opts.writeFiles) return;
        await mkdir(join(path, '..'), { recursive: true });
        await writeFileAsync(path, `$ ${argv.join(' ')}\n# exit ${r.exitCode}\n${r.stdout}${r.stderr ? `\n# stderr\n${r.stderr}` : ''}`);
        written.push(path);
      } catch (e) {
        process.stderr.write(`collecting ${file} failed: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    };
    try {
      if (this.opts.writeFiles) await mkdir(dir, { recursive: true });
      const r = await this.ctx.shell(['kind', 'export', 'logs', join(dir, 'kind'), '--name', this.ctx.cluster], { nothrow: true, timeoutMs: 300_000 });
      if (r.exitCode === 0) written.push(join(dir, 'kind'));
    } catch (e) {
      process.stderr.write(`kind export logs failed: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    for (const [topo, container] of this.opts.containerOf) {
      const inNode = (...argv: string[]) => ['docker', 'exec', container, ...argv];
      await save(`nodes/${topo}/ip-neigh.txt`, inNode('ip', 'neigh', 'show'));
      await save(`nodes/${topo}/bridge-fdb.txt`, inNode('bridge', 'fdb', 'show'));
      await save(`nodes/${topo}/iptables-save.txt`, inNode('iptables-save'));
      await save(`nodes/${topo}/conntrack-S.txt`, inNode('conntrack', '-S'));
    }
    const logs = (ns: string, selector: string) => kubectl(this.ctx, '-n', ns, 'logs', '-l', selector, '--all-containers', '--prefix', '--timestamps', '--tail=-1', '--max-log-requests=20');
    await save('pods/pods.txt', kubectl(this.ctx, 'get', 'pods', '-A', '-o', 'wide'));
    await save('pods/coredns.log', logs('kube-system', 'k8s-app=kube-dns'));
    await save('pods/kube-flannel.log', logs('kube-flannel', 'app=flannel'));
    await save('pods/upstream-dns.log', kubectl(this.ctx, '-n', POD_NAMESPACE, 'logs', UPSTREAM_DNS, '--timestamps'));
    return written;
  }

  /** Idempotent. Deletes the cluster unless asked to keep it; collects logs into that directory first when given one. */
  async down(opts: { collectLogs?: string } = {}): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    if (opts.collectLogs) await this.collectLogs(opts.collectLogs);
    if (this.opts.keep) {
      process.stderr.write(
        `kept kind cluster ${this.ctx.cluster}: kubectl --kubeconfig ${this.ctx.kubeconfig} get pods -A; ${this.enterHint.split('   ')[0]}; ` +
          `delete it with: vxchaos down ${this.runId} (or kind delete cluster --name ${this.ctx.cluster})\n`,
      );
      return;
    }
    await this.ctx.shell(['kind', 'delete', 'cluster', '--name', this.ctx.cluster, '--kubeconfig', this.ctx.kubeconfig], { timeoutMs: 300_000 });
    rmSync(this.ctx.kubeconfig, { force: true });
  }
}
