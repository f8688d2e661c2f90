import type { ClientPod, Cluster } from '../providers/provider.ts';

export type Params = Record<string, string | number | boolean>;

export interface FaultContext {
  cluster: Cluster;
  client: ClientPod;
  params: Params;
  log: (msg: string) => void;
}

/** A fault in place: what it measured while applying, and how to undo it. */
export interface AppliedFault {
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
