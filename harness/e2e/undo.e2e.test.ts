import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planCells, prepareSuite, type ResolvedCell } from '../cells.ts';
import { downAll } from '../providers/netns/ledger.ts';
import { shell } from '../exec/shell.ts';
import { stalePeers } from '../faults/mac-churn.ts';
import { NetnsProvider } from '../providers/netns/provider.ts';
import type { Cluster } from '../providers/provider.ts';
import { runCell } from '../runner.ts';
import { expectRunGone, upThreeNode } from './helpers.ts';

const runId = `u${Math.random().toString(16).slice(2, 7)}`;
const caps = new NetnsProvider().capabilities;

/** What a cell may change on every node: rules, tables, links, and the processes in the run's namespaces. */
async function state(cluster: Cluster) {
  const out: Record<string, unknown> = {};
  for (const n of cluster.nodes) {
    out[n.name] = {
      rules: (await n.exec(['iptables-save'])).stdout.split('\n').filter((l) => l.startsWith('-A ')),
      nftTables: (await n.exec(['nft', 'list', 'tables'])).stdout.split('\n').sort(),
      links: (JSON.parse((await n.exec(['ip', '-j', 'link'])).stdout) as { ifname: string }[]).map((l) => l.ifname).sort(),
      txChecksum: /tx-checksum-ip-generic: (\w+)/.exec((await n.exec(['ethtool', '-k', 'flannel.1'])).stdout)?.[1],
    };
  }
  const pids = await shell(['ip', 'netns', 'pids', `vxc-${runId}-node-1`]);
  out.node1Pids = pids.stdout.split('\n').filter(Boolean).length;
  out.resolv = await cluster.clients.musl!.readFile('/etc/resolv.conf');
  return out;
}

/** Every peer's neighbour and FDB entry carries each node's current VtepMAC. */
async function peersConsistent(cluster: Cluster): Promise<void> {
  for (const lease of await cluster.flannel.leases()) expect(await stalePeers(cluster, lease), lease.node).toEqual({ neigh: 0, fdb: 0 });
}

function cellOf(suite: string, pick: (c: ResolvedCell) => boolean): ResolvedCell {
  const { suite: s } = prepareSuite(suite);
  const rc = planCells(s, ['musl'], { quick: true }).find(pick);
  if (!rc) throw new Error(`no such cell in ${suite}`);
  return { ...rc, workload: { ...rc.workload, durationS: 2 } };
}

describe('a broken cell leaves the cluster as it found it, and the run goes on (netns e2e)', () => {
  let cluster: Cluster;
  const logsDir = mkdtempSync(join(tmpdir(), 'vxc-undo-'));

  beforeAll(async () => {
    cluster = await upThreeNode(runId, ['musl']);
  });
  afterAll(async () => {
    await cluster?.down().catch(() => undefined);
    await downAll(undefined, runId);
    await expectRunGone(runId);
  });

  it('a fault that fails half-way (peers frozen, flannel.1 deleted, flanneld restart fails): error verdict, every change undone', async () => {
    const before = await state(cluster);
    let crashed = false;
    const flannel = cluster.flannel;
    const flaky: Cluster = Object.assign(Object.create(cluster) as Cluster, {
      flannel: {
        leases: () => flannel.leases(),
        freeze: (n: readonly string[]) => flannel.freeze(n),
        thaw: (n: readonly string[]) => flannel.thaw(n),
        restart: async (node: string) => {
          if (!crashed) {
            crashed = true;
            throw new Error(`flanneld on ${node} crashed on start`);
          }
          return flannel.restart(node);
        },
      },
    });
    const rc = cellOf('flannel-arp', (c) => c.fault.name === 'mac-churn' && c.mitigation.name === 'none');
    const cell = await runCell(flaky, caps, rc, { log: () => undefined, logsDir });
    expect(cell.verdict).toBe('error');
    expect(cell.reason).toContain('crashed on start');
    expect(cell.failsRun).toBe(true);
    expect(readdirSync(join(logsDir, `cell-${rc.index}`)).length).toBeGreaterThan(0);
    // flannel.1 is back on node-3 (with a new VtepMAC), the peers were thawed and carry it.
    expect(await state(cluster)).toEqual(before);
    await peersConsistent(cluster);
  });

  it('a mitigation whose undo throws does not skip the fault\'s undo: nft table, NodeLocal DNSCache and resolv.conf all gone', async () => {
    const before = await state(cluster);
    const nodeLocalDns = cluster.nodeLocalDns;
    const flaky: Cluster = Object.assign(Object.create(cluster) as Cluster, {
      nodeLocalDns: {
        enable: () => nodeLocalDns.enable(),
        disable: async () => {
          await nodeLocalDns.disable();
          throw new Error('node-cache DaemonSet deletion timed out');
        },
      },
    });
    const rc = cellOf('conntrack-race', (c) => c.mode === 'emulated' && c.mitigation.name === 'nodelocaldns');
    const cell = await runCell(flaky, caps, rc, { log: () => undefined });
    expect(cell.verdict).toBe('error');
    expect(cell.reason).toMatch(/undo failed: NodeLocal DNSCache removed: node-cache DaemonSet deletion timed out/);
    // node-1's process count covers its cache (unbound in the node's namespace)
    expect(await state(cluster)).toEqual(before);
  });

  it('the next cell is measured clean', async () => {
    const rc = cellOf('flannel-arp', (c) => c.fault.name === 'none');
    const cell = await runCell(cluster, caps, rc, { log: () => undefined });
    expect(cell.verdict, cell.reason).toBe('pass');
    expect(cell.samples).toBeGreaterThan(100);
    expect(cell.affected).toBe(0);
  });

  it('a cell the provider cannot do is skipped with its reason, and nothing is run', async () => {
    const rc = cellOf('checksum-offload', (c) => c.mitigation.name === 'kube-proxy-fix');
    const cell = await runCell(cluster, { ...caps, ownsKubeProxyChains: false }, { ...rc, client: 'musl' }, { log: () => undefined });
    expect(cell.verdict).toBe('skipped');
    expect(cell.reason).toMatch(/KUBE-POSTROUTING/);
    expect(cell.failsRun).toBe(false);
    expect(cell.samples).toBe(0);
  });
});
