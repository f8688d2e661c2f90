import type { FaultContext, WorkloadChange } from '../faults/fault.ts';

export type MitigationContext = FaultContext;

export interface AppliedMitigation extends WorkloadChange {
  counters: Record<string, number>;
  revert(): Promise<void>;
}

export interface Mitigation {
  name: string;
  description: string;
  apply(ctx: MitigationContext): Promise<AppliedMitigation>;
}

export const noMitigation: Mitigation = {
  name: 'none',
  description: 'no mitigation: the symptom as users meet it',
  apply: async () => ({ counters: {}, revert: async () => undefined }),
};
