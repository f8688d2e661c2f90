import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRunGone, runQuick, upThreeNode } from './helpers.ts';
import { loadSuite } from '../config/suite.ts';
import { isRoot } from '../doctor.ts';
import { downAll } from '../providers/netns/ledger.ts';
import { shell } from '../exec/shell.ts';
import type { Cluster } from '../providers/provider.ts';
import { newRunId } from '../runner.ts';

describe.skipIf(!isRoot())('dead-upstream end to end on real namespaces (needs root)', () => {
  const runId = newRunId();
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('external names stall ≈ 2 s behind a silent upstream, cluster names do not; dropping it or health checks fix it', async () => {
    const { matrix } = await runQuick(loadSuite('dead-upstream'), runId, 4);
    const cell = (client: string, mitigation: string, name?: string) => matrix.cells.find((c) => c.client === client && c.fault === 'dead-upstream' && c.mitigation === mitigation && c.name === name)!;
    for (const client of ['musl', 'glibc']) {
      const stalled = cell(client, 'none');
      expect(stalled.verdict, `${client}: ${stalled.reason}`).toBe('pass');
      expect(stalled.overThreshold).toBeGreaterThan(0);
      expect(stalled.stallP50Ms).toBeGreaterThan(1500);
      expect(stalled.stallP50Ms).toBeLessThan(2600);
      expect(stalled.errors).toBe(0);
      expect(cell(client, 'none', 'cluster names').overThreshold).toBe(0);
      const dropped = cell(client, 'drop-dead-upstream');
      expect(dropped.overThreshold, dropped.reason).toBe(0);
      expect(dropped.counters['dns.upstreamsDropped']).toBe(1);
      const policy = cell(client, 'forwarder-policy');
      expect(policy.verdict, policy.reason).toBe('pass');
      expect(policy.counters['forwarder.warmupMs']).toBeGreaterThan(0);
    }
    expect(matrix.failed).toBe(0);
    await expectRunGone(runId);
  });
});

describe.skipIf(!isRoot())('netns cluster DNS control (needs root)', () => {
  const runId = newRunId();
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await upThreeNode(runId, ['musl']);
  });
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('rewrites every replica\'s upstreams and puts them back; refuses a policy unbound cannot do', async () => {
    const dns = cluster.clusterDns;
    const before = await dns.upstreams();
    expect(before).toEqual({ servers: [cluster.topology.underlayGateway], policy: 'health-checked' });
    const dead = await dns.deadUpstream();
    expect(await dns.deadUpstream()).toBe(dead);
    // Silent: no answer, not even a refusal.
    const probe = await cluster.clients.musl!.exec(['dig', '+time=1', '+tries=1', `@${dead}`, 'test.example.cn'], { nothrow: true });
    expect(probe.exitCode).toBe(9);

    await dns.setUpstreams([dead, ...before.servers], 'random');
    expect(await dns.upstreams()).toEqual({ servers: [dead, ...before.servers], policy: 'random' });
    await expect(dns.setUpstreams(before.servers, 'sequential')).rejects.toThrow(/sequential/);
    await dns.setUpstreams(before.servers, before.policy);
    const answer = await cluster.clients.musl!.exec(['dig', '+short', '+time=2', '+tries=1', `@${cluster.topology.dns.clusterIP}`, 'test.example.cn']);
    expect(answer.stdout.trim()).toBe('203.0.113.10');
    const unbounds = (await shell(['ps', '-eo', 'args'])).stdout.split('\n').filter((l) => l.includes(`/run/vxchaos/${runId}/dns/`));
    expect(unbounds).toHaveLength(cluster.dnsPods.length);
  });
});
