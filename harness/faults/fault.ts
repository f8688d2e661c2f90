import { z } from 'zod';
import type { Workload } from '../config/suite.ts';
import type { UndoStack } from '../exec/undo.ts';
import type { Capabilities, ClientPod, Cluster, ForwardPolicy, KernelFeature } from '../providers/provider.ts';

export type Params = Record<string, string | number | boolean>;

export interface FaultContext<P = Params> {
  cluster: Cluster;
  client: ClientPod;
  /** The cell's params, already checked against the fault's or mitigation's own schema. */
  params: P;
  log: (msg: string) => void;
  /** Every change to the cluster registers its undo here the moment it is made (undo restores what was found). */
  undo: UndoStack;
  /** The workload about to be measured, before this fault's or mitigation's own changes (e.g. fqdn rewrites its targets). */
  workload: Workload;
}

/** What a fault or mitigation changes about the measurement itself (not the cluster). */
export interface WorkloadChange {
  /** e.g. fqdn: targets with a trailing dot; conntrack-race: more concurrent clients. */
  workload?: Partial<Workload>;
  /** Measure from another client pod (e.g. glibc-image: the same app on a glibc base image). */
  client?: ClientPod;
  /** State to read after the measurement, before the undo (e.g. conntrack entries the workload made). */
  finalCounters?: () => Promise<Record<string, number>>;
}

/** A fault or mitigation in place: what it measured while applying. Its undo is on the cell's stack. */
export interface Applied extends WorkloadChange {
  counters: Record<string, number>;
}
export type AppliedFault = Applied;

/**
 * What a cell needs from its provider (cilium's feature requirements). A cell whose fault or mitigation needs
 * something the provider lacks is skipped with `because`, never measured into a meaningless verdict.
 */
export type Requirement =
  | { capability: 'ownsKubeProxyChains' | 'privateNodeFiles' | 'servesUpstreamNames'; because: string }
  | { forwardPolicy: ForwardPolicy; because: string }
  | { kernel: KernelFeature; because: string };

/** The first requirement the capabilities do not meet, as a skip reason; undefined when all are met. */
export function unmetRequirement(reqs: readonly Requirement[], caps: Capabilities): string | undefined {
  for (const r of reqs) {
    if ('capability' in r && !caps[r.capability]) return r.because;
    if ('forwardPolicy' in r && !caps.forwardPolicies.includes(r.forwardPolicy)) return r.because;
    if ('kernel' in r && caps.kernel?.[r.kernel] === false) return r.because;
  }
  return undefined;
}

/** Shared by faults and mitigations: a name, a strict params schema, what it needs, and how to apply it. */
export interface Change<P> {
  name: string;
  description: string;
  /** The cell's params, decoded strictly: unknown names and out-of-range values are refused before anything is built. */
  params: z.ZodType<P, Params>;
  /** What this needs from the provider, for these params (and mode, for a fault). */
  requires?(params: P, mode: string): Requirement[];
  /**
   * Seconds its apply typically takes, where that is more than a moment (a forwarder that must learn first):
   * with clusters side by side the runner starts the longest cells first, so the clusters finish together.
   */
  applyS?: number;
}

export interface Fault<P = any> extends Change<P> {
  /** Seeds (field reports) this fault encodes. */
  seeds: readonly string[];
  /**
   * Modes; `native` brings only the trigger (does this kernel or version still have the bug?). Every other
   * mode makes the symptom by the harness's own hand, guaranteed where the provider says symptomsGuaranteed.
   */
  modes: readonly string[];
  defaultMode: string;
  apply(ctx: FaultContext<P>, mode: string): Promise<Applied>;
}

/** A fault or mitigation without params. */
export const noParams = z.strictObject({}) as unknown as z.ZodType<Record<string, never>, Params>;

export const noFault: Fault<Record<string, never>> = {
  name: 'none',
  description: 'no fault: the baseline',
  seeds: [],
  modes: ['none'],
  defaultMode: 'none',
  params: noParams,
  apply: async () => ({ counters: {} }),
};
