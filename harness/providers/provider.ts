import type { Topology } from '../config/topology.ts';
import type { ExecOptions, ExecResult } from '../exec/shell.ts';
import type { DropRow, DropSnapshot } from '../measure/drops.ts';

/**
 * The seam. Faults, mitigations and measurements reach the cluster only through these calls, so they run
 * unchanged on netns nodes (network namespaces) and kind nodes (containers).
 */
export interface ExecTarget {
  readonly name: string;
  /** Run argv inside the node or pod. Bounded by opts.timeoutMs (default 30 s). */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Write a file as the node or pod sees it (e.g. /etc/resolv.conf). */
  writeFile(path: string, content: string): Promise<void>;
  readFile(path: string): Promise<string>;
}

/** A long-running process started on a node or in a pod (a DNS cache, a server). */
export interface Daemon {
  readonly pid: number;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Short name used in logs and the ledger. */
  name: string;
}

export interface ClusterNode extends ExecTarget {
  /** Underlay address (the node's InternalIP). */
  readonly ip: string;
  /** The node's flannel subnet, e.g. 10.244.1.0/24. */
  readonly podSubnet: string;
  spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon>;
}

export type Libc = 'musl' | 'glibc';
export type PodRole = 'dns' | 'client' | 'server';

export interface Pod extends ExecTarget {
  readonly node: string;
  readonly ip: string;
  readonly role: PodRole;
  spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon>;
}

/** Somewhere vxprobe can run: argv prefix to run it there. */
export interface ProbeTarget extends ExecTarget {
  readonly probe: readonly string[];
}

export interface ClientPod extends Pod, ProbeTarget {
  readonly libc: Libc;
}

/** What flanneld publishes per node (kube: annotation flannel.alpha.coreos.com/backend-data). */
export interface VtepLease {
  node: string;
  publicIP: string;
  subnet: string;
  vtepMAC: string;
}

/** Control over the flannel daemons: what a fault may do to them (not to the kernel state they program). */
export interface FlannelControl {
  leases(): Promise<VtepLease[]>;
  /** Restart flanneld on a node; it recreates flannel.1 if missing and republishes its lease. */
  restart(node: string): Promise<void>;
  /** Stop flanneld on these nodes from reacting to lease changes (kind: SIGSTOP), and resume it. */
  freeze(nodes: readonly string[]): Promise<void>;
  thaw(nodes: readonly string[]): Promise<void>;
}

/**
 * How the cluster DNS picks among its upstreams for names outside the cluster domain — CoreDNS `forward`:
 * `sequential` = `policy sequential` + `max_fails 0` (always in list order, a silent server costs its read
 * timeout on every query); `random` = `policy random` + `max_fails 0` (no health checks: a silent server is
 * picked again and again); `health-checked` = the default (`max_fails 2`, `health_check 0.5s`: a silent
 * server is marked down and skipped). Providers say in their docs how closely they follow each.
 */
export type ForwardPolicy = 'sequential' | 'random' | 'health-checked';

export interface UpstreamConfig {
  servers: string[];
  policy: ForwardPolicy;
}

/** Control over the cluster DNS's forwarding (kube: the CoreDNS Corefile's `forward` block). */
export interface ClusterDnsControl {
  /** Where the replicas forward external names now, in order. */
  upstreams(): Promise<UpstreamConfig>;
  /** Rewrite every replica's forwarder; resolves once every replica answers again. */
  setUpstreams(servers: readonly string[], policy: ForwardPolicy): Promise<void>;
  /** An upstream address inside the run that takes queries and never answers (packets dropped in silence). */
  deadUpstream(): Promise<string>;
}

/** node-local-dns's default link-local address (the Kubernetes docs' and the addon template's value). */
export const NODE_LOCAL_DNS_ADDRESS = '169.254.20.10';

/**
 * NodeLocal DNSCache (k8s-dns node-cache, the node-local-dns DaemonSet; stable since Kubernetes 1.18): a DNS
 * cache on every node, listening on a link-local address (default 169.254.20.10, NODE_LOCAL_DNS_ADDRESS)
 * that pods name in their resolv.conf. Raw-table NOTRACK rules keep queries to and answers from that address
 * out of conntrack, so there is no DNAT and no UDP insert race (seeds 000, 003); the cache forwards cluster
 * names to the cluster DNS over TCP (`force_tcp`), one connection carrying many queries. Known costs: each
 * node's cache is a single point of failure for its pods, a DaemonSet restart leaves a ~20 s DNS gap
 * (kubernetes/dns 310), and NOTRACK interferes with some policy engines (kubernetes 98758).
 * netns: unbound on a port-less bridge per node with node-cache's iptables rules; kind: the pinned addon.
 */
export interface NodeLocalDnsControl {
  /**
   * Install the cache on every node; resolves with the address pods should use once every node's cache
   * answers a cluster name through its upstream. A failed enable removes what it installed. Idempotent.
   */
  enable(): Promise<{ address: string }>;
  /** Remove the cache from every node (address, rules, process); resolves once they are gone. No-op when off. */
  disable(): Promise<void>;
}

/**
 * What a provider can do, declared once. A cell whose fault or mitigation needs a capability the provider
 * lacks is skipped with the reason; nothing outside harness/providers/ asks which provider it is.
 */
export interface Capabilities {
  /**
   * The harness programs the control plane's kernel state itself (an emulated flanneld and kube-proxy), so a
   * fault that is not `native` is guaranteed to bring its symptom: not reproducing it means the harness broke.
   * False on real components, where a missing symptom is a finding (did this version fix it?).
   */
  symptomsGuaranteed: boolean;
  /** The harness owns kube-proxy's KUBE-POSTROUTING; a real kube-proxy rewrites it on every sync. */
  ownsKubeProxyChains: boolean;
  /** The forward policies the cluster DNS can be set to (CoreDNS forward; unbound has no ordered forwarding). */
  forwardPolicies: readonly ForwardPolicy[];
  /** Files written to a node (e.g. its /etc/resolv.conf) are private to the run, never a real node's files. */
  privateNodeFiles: boolean;
  /** The topology's upstream names (dns.upstream) are answered inside the run, as on the netns fabric. */
  servesUpstreamNames: boolean;
  /**
   * `emulated` when the nodes' CPU is emulated (qemu TCG, no KVM): latencies are inflated many times over, so
   * latency bounds (a clean cell's p99) mean nothing and are not judged; failures and timeouts still are.
   */
  timing?: 'native' | 'emulated';
  /**
   * How many clusters of this provider one run may hold at once: the runner then builds that many alike and
   * shares the cells out among them, measured side by side (each cell records its cluster). Absent or 1: one
   * cluster, every cell in turn. Namespaces are cheap; a kind cluster or a VM is not.
   */
  clustersAtOnce?: number;
  /** Kernel facilities the nodes' kernel has: each cell that needs one says so (drop reasons need 5.17). */
  kernel?: Partial<Record<KernelFeature, boolean>>;
}

export type KernelFeature = 'dropReasons' | 'nftDynamicSets' | 'vxlan' | 'conntrack';

/** The kernel a run measured: matrix.json's `kernel` is its release, `kernelUnderTest` all of it. */
export interface KernelUnderTest {
  /** uname -r */
  release: string;
  /** uname -v */
  version: string;
  /** Where it came from: `host`, `debian:bookworm` (apt, signatures checked), or a path the user gave. */
  source: string;
  /** Facts worth knowing when reading its numbers (e.g. clocksource hpet under TCG, accel tcg|kvm). */
  notes?: Record<string, string>;
}

/** A run a provider knows of: kept with --keep, or left behind by a crash. */
export interface RunRef {
  runId: string;
  /** What is left of it, for a person (e.g. "7 namespaces, 4 processes"). */
  what: string;
}

/**
 * Where packets died in the run's own namespaces (kernel drop reasons, harness/measure/drops.ts): one tracer
 * per run, sampled before and after each cell's measurement. Optional: a provider that cannot trace leaves it out.
 */
export interface ClusterDrops {
  /** False when the tracer could not start here (no BTF, not root, not built); `why` says which. */
  readonly available: boolean;
  readonly why?: string;
  /** Whether the kernel names drop reasons (5.17+); rows read 'n/a' without. */
  readonly reasons?: boolean;
  /** Cumulative counts since the run started; throws when the tracer is gone. */
  snapshot(): Promise<DropSnapshot>;
  /** What grew between two snapshots, named by the run's nodes and pods (node-3, client-musl, fabric). */
  delta(before: DropSnapshot, after: DropSnapshot): DropRow[];
}

export interface Cluster {
  readonly provider: string;
  readonly runId: string;
  readonly topology: Topology;
  readonly nodes: readonly ClusterNode[];
  readonly dnsPods: readonly Pod[];
  readonly clients: Readonly<Partial<Record<Libc, ClientPod>>>;
  readonly flannel: FlannelControl;
  readonly clusterDns: ClusterDnsControl;
  readonly nodeLocalDns: NodeLocalDnsControl;
  node(name: string): ClusterNode;
  /** vxprobe on a node's own network (as a host process, glibc): node → Service workloads. */
  nodeProbe(node: string): ProbeTarget;
  /** Facts for the report: kernel, tool versions. */
  describe(): Promise<Record<string, string>>;
  /** The kernel the nodes run (a VM's guest kernel, or the host's); absent: the harness's own host kernel. */
  readonly kernel?: KernelUnderTest;
  /**
   * Writes what a person needs to see why a cell or bring-up failed into dir (neighbour and FDB tables,
   * iptables-save, conntrack -S, daemon logs …); returns the files written. Never throws.
   */
  collectLogs(dir: string): Promise<string[]>;
  /** Kernel drop counters of the run's namespaces; absent where the provider has no tracer (see `dropsUnavailableWhy`). */
  readonly drops?: ClusterDrops;
  /** How a person enters a node of a kept cluster (e.g. `ip netns exec vxc-<run>-node-1 bash`). */
  readonly enterHint: string;
  down(): Promise<void>;
}

export interface UpOptions {
  runId: string;
  clients: readonly Libc[];
  /** Where the provider writes what it can collect (collectLogs) when bring-up fails. */
  logsDir?: string;
  /** Progress: one call per step as it starts and ends. */
  onStep?: (step: string, state: 'start' | 'done', ms?: number) => void;
}

export interface Provider {
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Fail early, with what to install, when this machine cannot run the provider. */
  preflight(): Promise<void>;
  up(topology: Topology, opts: UpOptions): Promise<Cluster>;
  /** Runs of this provider that still exist on this machine (kept, or left by a crash). */
  list(): Promise<RunRef[]>;
  /**
   * Removes one run's cluster by id (or every run's, without one) even when no process of the run is alive;
   * returns the problems met (empty when all is gone). This is the teardown a run's own cleanup also calls.
   */
  down(runId?: string): Promise<{ removed: string[]; problems: string[] }>;
}
