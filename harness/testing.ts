import { UndoStack } from './exec/undo.ts';
import type { Workload } from './config/suite.ts';
import type { FaultContext } from './faults/fault.ts';
import type { ClientPod, Cluster } from './providers/provider.ts';

/** A suite workload with the schema's defaults, for tests that apply a fault or mitigation directly. */
export const TEST_WORKLOAD: Workload = { kind: 'resolve', targets: ['web'], source: 'pod', threads: 8, durationS: 10, fresh: false, resolverOptions: [], thresholdMs: 1000 };

/** What the runner hands a fault or mitigation, for tests that drive one directly: run `undo.unwind()` to revert. */
export function testContext<P>(cluster: Cluster, client: ClientPod, params: P, workload: Partial<Workload> = {}): FaultContext<P> & { undo: UndoStack } {
  return { cluster, client, params, log: () => undefined, undo: new UndoStack(), workload: { ...TEST_WORKLOAD, ...workload } };
}
