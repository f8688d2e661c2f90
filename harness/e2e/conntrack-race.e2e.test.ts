import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRunGone, runQuick, upThreeNode } from './helpers.ts';
import { loadSuite } from '../config/suite.ts';
import { isRoot } from '../doctor.ts';
import { downAll } from '../providers/netns/ledger.ts';
import { shell } from '../exec/shell.ts';
import { conntrackRace, RACE_TABLE } from '../faults/conntrack-race.ts';
import { NODELOCAL_IP, nodeLocalDns } from '../mitigations/nodelocaldns.ts';
import type { Cluster } from '../providers/provider.ts';
import { newRunId } from '../runner.ts';

describe.skipIf(!isRoot())('conntrack-race end to end on real namespaces (needs root)', () => {
  const runId = newRunId();
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('emulated race: musl stalls 2.5 s, glibc 5 s; single-request fixes glibc only; nodelocaldns fixes both', async () => {
    const suite = loadSuite('conntrack-race');
    // The shipped cells and expectations, fewer of them and shorter: the seed's split and its fixes.
    suite.cells = suite.cells.filter((c) => c.mode === 'emulated' && !c.name && ['none', 'single-request', 'nodelocaldns'].includes(c.mitigation));
    const { matrix } = await runQuick(suite, runId, 4);
    const cell = (client: string, mitigation: string) => matrix.cells.find((c) => c.client === client && c.mitigation === mitigation)!;
    expect(matrix.cells).toHaveLength(6);

    const musl = cell('musl', 'none');
    expect(musl.verdict, musl.reason).toBe('pass');
    expect(musl.stallP50Ms).toBeGreaterThan(2000);
    expect(musl.stallP50Ms).toBeLessThan(3500);
    expect(musl.counters['race.drops']).toBeGreaterThan(0);
    const glibc = cell('glibc', 'none');
    expect(glibc.verdict, glibc.reason).toBe('pass');
    expect(glibc.stallP50Ms).toBeGreaterThan(4000);
    expect(glibc.stallP50Ms).toBeLessThan(6500);

    // glibc sends A and AAAA one after the other: nothing to race. musl ignores the option.
    expect(cell('glibc', 'single-request').overThreshold).toBe(0);
    expect(cell('glibc', 'single-request').counters['race.drops']).toBe(0);
    expect(cell('musl', 'single-request').stallP50Ms).toBeGreaterThan(2000);

    for (const client of ['musl', 'glibc']) {
      const local = cell(client, 'nodelocaldns');
      expect(local.verdict, `${client}: ${local.reason}`).toBe('pass');
      expect(local.overThreshold).toBe(0);
      expect(local.counters['race.drops']).toBe(0);
    }
    expect(matrix.failed).toBe(0);
    await expectRunGone(runId);
  });
});

describe.skipIf(!isRoot())('conntrack-race and nodelocaldns revert to the cluster they found (needs root)', () => {
  const runId = newRunId();
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await upThreeNode(runId, ['musl']);
  });
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('leaves no nft table, link, iptables rule, cache process or resolv.conf change behind', async () => {
    const client = cluster.clients.musl!;
    const node = cluster.node(client.node);
    const ctx = { cluster, client, params: { dropPercent: 50 }, log: () => undefined };
    const resolvBefore = await client.readFile('/etc/resolv.conf');
    // Rules, not tables: iptables-nft keeps an emptied table, which filters nothing.
    const rules = async () => (await node.exec(['iptables-save'])).stdout.split('\n').filter((l) => l.startsWith('-A ')).join('\n');
    const rulesBefore = await rules();

    const race = await conntrackRace.apply(ctx, 'emulated');
    const local = await nodeLocalDns.apply(ctx);
    expect((await node.exec(['nft', 'list', 'tables'])).stdout).toContain(RACE_TABLE);
    expect(await client.readFile('/etc/resolv.conf')).toContain(`nameserver ${NODELOCAL_IP}`);
    for (const n of cluster.nodes) {
      expect((await n.exec(['ip', '-j', 'addr', 'show', 'dev', 'nodelocaldns'])).stdout).toContain(NODELOCAL_IP);
      expect((await n.exec(['iptables-save', '-t', 'raw'])).stdout).toContain(`-d ${NODELOCAL_IP}/32 -p udp -m udp --dport 53 -m comment --comment "NodeLocal DNS Cache: skip conntrack" -j NOTRACK`);
    }
    const caches = (await shell(['ps', '-eo', 'args'])).stdout.split('\n').filter((l) => l.includes('/etc/unbound/nodelocaldns.conf'));
    expect(caches.length).toBeGreaterThanOrEqual(3);

    await local.revert();
    await race.revert();
    expect(await client.readFile('/etc/resolv.conf')).toBe(resolvBefore);
    expect((await node.exec(['nft', 'list', 'tables'])).stdout).not.toContain(RACE_TABLE);
    expect(await rules()).toBe(rulesBefore);
    for (const n of cluster.nodes) {
      expect((await n.exec(['ip', 'link', 'show', 'nodelocaldns'], { nothrow: true })).exitCode).not.toBe(0);
    }
    const left = (await shell(['ps', '-eo', 'args'])).stdout.split('\n').filter((l) => l.includes('/etc/unbound/nodelocaldns.conf'));
    expect(left).toEqual([]);
  });
});
