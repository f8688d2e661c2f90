import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shell } from '../exec/shell.ts';
import { collect, crossVersionTable, labelsFromName } from './cross-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'vxchaos-nightly-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cell = (client: string, mitigation: string, verdict: string, affectedRate: number, p99Ms: number) => ({
  client, fault: 'mac-churn', faultMode: 'stale-peers', mitigation, verdict, affectedRate, errorRate: affectedRate, p99Ms,
});

/** One downloaded artifact as the nightly job uploads it: labels.json + reports/<run-id>/matrix.json. */
function artifact(name: string, labels: object | undefined, cells: object[] | undefined) {
  const root = join(dir, name);
  mkdirSync(join(root, 'run-1'), { recursive: true });
  if (labels) writeFileSync(join(root, 'labels.json'), JSON.stringify(labels));
  if (cells) writeFileSync(join(root, 'run-1', 'matrix.json'), JSON.stringify({ schemaVersion: 1, suite: 'flannel-arp', kernel: '6.8.0-1021-azure', cells }));
}

artifact('nightly-k8s-v1.36.1-flannel-v0.28.9-ubuntu-24.04', { k8s: 'v1.36.1', flannel: 'v0.28.9', runner: 'ubuntu-24.04', kernel: '6.8.0-1021-azure' }, [
  cell('musl', 'none', 'not-reproduced', 0, 2),
  cell('musl', 'neigh-resync', 'pass', 0, 2),
]);
artifact('nightly-k8s-v1.36.1-flannel-v0.24.0-ubuntu-24.04', undefined, [cell('musl', 'none', 'pass', 0.33, 5000), cell('musl', 'neigh-resync', 'pass', 0, 3)]);
artifact('nightly-k8s-v1.33.12-flannel-v0.28.9-ubuntu-22.04', { k8s: 'v1.33.12', flannel: 'v0.28.9', runner: 'ubuntu-22.04', kernel: '6.5.0-1025-azure' }, undefined);

describe('cross-version matrix', () => {
  const jobs = collect(dir);
  const table = crossVersionTable(jobs);
  const rows = table.split('\n').filter((l) => l.startsWith('| v'));

  it('reads labels from labels.json, or from the artifact name when a job wrote none', () => {
    expect(labelsFromName('nightly-k8s-v1.36.1-flannel-v0.24.0-ubuntu-24.04')).toEqual({ k8s: 'v1.36.1', flannel: 'v0.24.0', runner: 'ubuntu-24.04' });
    expect(jobs.map((j) => j.labels.flannel).sort()).toEqual(['v0.24.0', 'v0.28.9', 'v0.28.9']);
  });

  it('has a row per job, newest Kubernetes and flannel first, a column per cell', () => {
    expect(rows.map((r) => r.split(' | ').slice(0, 3).join(' ').replace('| ', ''))).toEqual([
      'v1.36.1 v0.28.9 ubuntu-24.04',
      'v1.36.1 v0.24.0 ubuntu-24.04',
      'v1.33.12 v0.28.9 ubuntu-22.04',
    ]);
    expect(table).toContain('| Kubernetes | flannel | runner | kernel | ⚑ flannel-arp: musl mac-churn/stale-peers + none | flannel-arp: musl mac-churn/stale-peers + neigh-resync |');
  });

  it('flags a cell whose verdict changed between versions, and shows rate and p99', () => {
    expect(rows[1]).toContain('✅ pass · 33.0% · p99 5.0 s');
    expect(rows[0]).toContain('⚪ not-reproduced · 0.0% · p99 2 ms');
  });

  it('says when a job produced no matrix instead of leaving a hole', () => {
    expect(rows[2]).toContain('no matrix (job failed before measuring)');
    expect(table).toMatch(/3 jobs, 4 cells: 3 pass, 0 fail, 1 not reproduced, 1 jobs without a matrix/);
  });

  it('runs as the script the nightly workflow calls', async () => {
    const r = await shell(['npx', 'tsx', join(import.meta.dirname, 'cross-run.ts'), dir], { timeoutMs: 60_000 });
    expect(r.stdout).toBe(table);
  });
});

describe('cells a provider skipped or that errored', () => {
  it('shows them as such and counts them in the summary', () => {
    const skipped = { client: 'musl', fault: 'checksum-offload', faultMode: 'emulated', mitigation: 'kube-proxy-fix', verdict: 'skipped' };
    const errored = { client: 'glibc', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'none', verdict: 'error' };
    const table = crossVersionTable([
      { artifact: 'a', labels: { k8s: 'v1.36.1', flannel: 'v0.28.9', runner: 'ubuntu-24.04' }, matrices: [{ schemaVersion: 1, suite: 'checksum-offload', cells: [skipped, errored] }] },
    ]);
    expect(table).toContain('⏭ skipped');
    expect(table).toContain('⚠ error');
    expect(table).toMatch(/1 jobs, 2 cells: 0 pass, 0 fail, 0 not reproduced, 1 skipped, 1 error/);
  });
});
