import type { Topology } from '../config/topology.ts';
import type { ExecOptions, ExecResult } from '../exec/shell.ts';

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

export interface Cluster {
  readonly provider: string;
  readonly runId: string;
  readonly topology: Topology;
  readonly nodes: readonly ClusterNode[];
  readonly dnsPods: readonly Pod[];
  readonly clients: Readonly<Partial<Record<Libc, ClientPod>>>;
  readonly flannel: FlannelControl;
  node(name: string): ClusterNode;
  /** vxprobe on a node's own network (as a host process, glibc): node → Service workloads. */
  nodeProbe(node: string): ProbeTarget;
  /** Facts for the report: kernel, tool versions. */
  describe(): Promise<Record<string, string>>;
  down(): Promise<void>;
}

export interface UpOptions {
  runId: string;
  clients: readonly Libc[];
  /** Progress: one call per step as it starts and ends. */
  onStep?: (step: string, state: 'start' | 'done', ms?: number) => void;
}

export interface Provider {
  readonly name: string;
  /** Fail early, with what to install, when this machine cannot run the provider. */
  preflight(): Promise<void>;
  up(topology: Topology, opts: UpOptions): Promise<Cluster>;
}
