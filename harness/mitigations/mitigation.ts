import { noParams, type Applied, type Change, type FaultContext, type Params } from '../faults/fault.ts';

export type MitigationContext<P = Params> = FaultContext<P>;
export type AppliedMitigation = Applied;

export interface Mitigation<P = any> extends Change<P> {
  apply(ctx: MitigationContext<P>): Promise<Applied>;
}

export const noMitigation: Mitigation<Record<string, never>> = {
  name: 'none',
  description: 'no mitigation: the symptom as users meet it',
  params: noParams,
  apply: async () => ({ counters: {} }),
};
