import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectRunGone, runQuick } from './helpers.ts';
import { prepareSuite } from '../cells.ts';
import { isRoot } from '../doctor.ts';
import { downAll } from '../providers/netns/ledger.ts';
import type { Matrix } from '../report/matrix.ts';
import { newRunId } from '../runner.ts';

describe.skipIf(!isRoot())('flannel-arp end to end on real namespaces (needs root)', () => {
  const runId = newRunId();
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('reproduces seed 002 with both resolvers, then neigh-resync makes it clean', async () => {
    const { matrix, dir } = await runQuick(prepareSuite('flannel-arp'), runId, 5);
    const cell = (client: string, fault: string, mitigation: string) => matrix.cells.find((c) => c.client === client && c.fault === fault && c.mitigation === mitigation)!;
    for (const client of ['musl', 'glibc']) {
      const base = cell(client, 'none', 'none');
      expect(base.errors, `${client} baseline`).toBe(0);
      expect(base.p99Ms).toBeLessThan(100);

      const broken = cell(client, 'mac-churn', 'none');
      expect(broken.faultMode).toBe('stale-peers');
      expect(broken.verdict, broken.reason).toBe('pass');
      // One replica of three is unreachable: a share of lookups fails, each only after the resolver gives up.
      expect(broken.affectedRate).toBeGreaterThan(0.1);
      expect(broken.affectedRate).toBeLessThan(0.6);
      expect(broken.errorsByKind.EAI_AGAIN).toBeGreaterThan(0);
      expect(broken.maxMs).toBeGreaterThan(client === 'musl' ? 4500 : 9000);
      expect(broken.counters['neigh.stalePeers']).toBe(2);

      const fixed = cell(client, 'mac-churn', 'neigh-resync');
      expect(fixed.verdict, fixed.reason).toBe('pass');
      expect(fixed.errors).toBe(0);
      expect(fixed.counters['resync.neighFixed']).toBe(2);
    }
    expect(matrix.failed).toBe(0);

    // The contract: matrix.json as written, with the reports beside it.
    const written = JSON.parse(readFileSync(join(dir, 'matrix.json'), 'utf8')) as Matrix;
    expect(written.schemaVersion).toBe(1);
    expect(written.cells).toHaveLength(6);
    for (const key of ['client', 'fault', 'faultMode', 'mitigation', 'workload', 'target', 'samples', 'errors', 'errorRate', 'errorsByKind', 'p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs', 'thresholdMs', 'overThreshold', 'counters', 'expectation', 'verdict']) {
      expect(written.cells[0]).toHaveProperty(key);
    }
    for (const f of ['matrix.md', 'junit.xml', 'index.html']) expect(existsSync(join(dir, f)), f).toBe(true);
    // Measured on two clusters side by side (netns, two CPUs or more): each cell says which.
    if (cpus().length >= 2) {
      expect(new Set(written.cells.map((c) => c.cluster))).toEqual(new Set([`${runId}.1`, `${runId}.2`]));
      expect(written.host.clusters).toMatch(/^2 side by side/);
    }

    // Nothing of the run is left.
    await expectRunGone(runId);
  });
});
