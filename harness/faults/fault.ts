import type { Workload } from '../config/suite.ts';
import type { ClientPod, Cluster } from '../providers/provider.ts';

export type Params = Record<string, string | number | boolean>;

export interface FaultContext {
  cluster: Cluster;
  client: ClientPod;
  params: Params;
  log: (msg: string) => void;
  /** The workload about to be measured, before this fault's or mitigation's own changes (e.g. fqdn rewrites its targets). */
  workload?: Workload;
}

/** What a fault or mitigation changes about the measurement itself (not the cluster). */
export interface WorkloadChange {
  /** e.g. fqdn: targets with a trailing dot; conntrack-race: more concurrent clients. */
  workload?: Partial<Workload>;
  /** Measure from another client pod (e.g. glibc-image: the same app on a glibc base image). */
  client?: ClientPod;
  /** State to read after the measurement, before reverting (e.g. conntrack entries the workload made). */
  finalCounters?: () => Promise<Record<string, number>>;
}

/** A fault in place: what it measured while applying, and how to undo it. */
export interface AppliedFault extends WorkloadChange {
  counters: Record<string, number>;
  revert(): Promise<void>;
}

export interface Fault {
  name: string;
  description: string;
  /** Seeds (field reports) this fault encodes. */
  seeds: readonly string[];
  modes: readonly string[];
  defaultMode: string;
  apply(ctx: FaultContext, mode: string): Promise<AppliedFault>;
}

export const noFault: Fault = {
  name: 'none',
  description: 'no fault: the baseline',
  seeds: [],
  modes: ['none'],
  defaultMode: 'none',
  apply: async () => ({ counters: {}, revert: async () => undefined }),
};
