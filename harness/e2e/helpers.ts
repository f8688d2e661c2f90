import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { PreparedSuite } from '../cells.ts';
import { CLUSTERS_DIR } from '../config/suite.ts';
import { loadTopology } from '../config/topology.ts';
import { STATE_DIR } from '../providers/netns/ledger.ts';
import { shell } from '../exec/shell.ts';
import { progress } from '../progress.ts';
import { NetnsProvider } from '../providers/netns/provider.ts';
import type { Cluster, Libc } from '../providers/provider.ts';
import type { Matrix } from '../report/matrix.ts';
import { runSuite } from '../runner.ts';

/** A suite as CI runs it (--quick), shorter cells, quiet, reports in a temp dir. */
export async function runQuick(prepared: PreparedSuite, runId: string, durationS: number): Promise<{ matrix: Matrix; dir: string }> {
  return runSuite({
    prepared,
    provider: new NetnsProvider(),
    quick: true,
    keep: false,
    durationS,
    outDir: mkdtempSync(join(tmpdir(), 'vxc-e2e-')),
    runId,
    progress: progress({ quiet: true }),
  });
}

/** The three-node topology on the netns provider, for tests that drive faults directly. */
export async function upThreeNode(runId: string, clients: readonly Libc[]): Promise<Cluster> {
  const provider = new NetnsProvider();
  await provider.preflight();
  return provider.up(loadTopology(`${CLUSTERS_DIR}/three-node.yaml`), { runId, clients });
}

export async function netnsList(): Promise<string> {
  return (await shell(['ip', 'netns', 'list'])).stdout;
}

/** Nothing of the run is left, of none of its clusters side by side (`<run>.<n>`): no namespace, no state directory. */
export async function expectRunGone(runId: string): Promise<void> {
  const list = await netnsList();
  expect(list).not.toContain(`vxc-${runId}-`);
  expect(list).not.toContain(`vxc-${runId}.`);
  expect(existsSync(join(STATE_DIR, runId))).toBe(false);
  expect(existsSync(STATE_DIR) ? readdirSync(STATE_DIR).filter((d) => d.startsWith(`${runId}.`)) : []).toEqual([]);
}
