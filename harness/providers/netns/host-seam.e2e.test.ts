import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { isRoot } from '../../doctor.ts';
import { newRunId } from '../../runner.ts';
import type { Cluster } from '../provider.ts';
import { CountingHost } from './counting-host.ts';
import { downAll, Ledger, runNamespaces } from './ledger.ts';
import { LocalHost } from './local-host.ts';
import { NetnsProvider } from './provider.ts';

/** The three-node topology built through a Host that writes down every call: the seam is the only way out. */
describe.skipIf(!isRoot())('netns provider through the Host seam (needs root)', () => {
  const runId = newRunId();
  const host = new CountingHost(new LocalHost());
  const provider = new NetnsProvider({ host });
  const logDir = mkdtempSync(join(tmpdir(), 'vxc-logs-'));
  let cluster: Cluster;

  beforeAll(async () => {
    await provider.preflight();
    cluster = await provider.up(loadTopology(`${CLUSTERS_DIR}/three-node.yaml`), { runId, clients: ['musl'] });
  });
  afterAll(async () => {
    await downAll(undefined, runId);
    rmSync(logDir, { recursive: true, force: true });
  });

  const ran = (pred: (argv: string[]) => boolean) => host.calls.filter((c) => c.member === 'run' && pred(c.what));

  it('created every namespace of the run through the Host', async () => {
    const namespaces = await runNamespaces(new LocalHost(), runId);
    expect(namespaces).toContain(`vxc-${runId}-node-1`);
    // fabric, 3 nodes, 3 DNS pods, 1 web endpoint at least, 1 client
    expect(namespaces.length).toBeGreaterThanOrEqual(8);
    // `ip netns add NS`, or `netns add NS` lines fed to `ip -batch -`
    const added = [
      ...ran((a) => a.slice(0, 3).join(' ') === 'ip netns add').map((c) => c.what[3]!),
      ...ran((a) => a.join(' ') === 'ip -batch -').flatMap((c) => [...(c.input ?? '').matchAll(/^netns add (\S+)$/gm)].map((m) => m[1]!)),
    ];
    expect(added.sort()).toEqual([...namespaces].sort());
  });

  it('started every daemon of the run through the Host and recorded it in the ledger', async () => {
    const spawned = host.calls.filter((c) => c.member === 'spawn');
    const pids = (await Ledger.load(new LocalHost(), runId)).filter((e) => e.kind === 'pid');
    // 3 unbound replicas, dnsmasq, the web servers
    expect(pids.length).toBeGreaterThanOrEqual(5);
    expect(spawned.length).toBe(pids.length);
    expect(spawned.some((c) => c.what.includes('dnsmasq'))).toBe(true);
    // Files went through the seam too: the client's resolv.conf is a bind-mount source under /etc/netns.
    expect(host.calls.some((c) => c.member === 'writeFile' && c.what[0] === `/etc/netns/vxc-${runId}-node-1-musl/resolv.conf`)).toBe(true);
    expect(host.calls.some((c) => c.member === 'appendFile' && c.what[0]!.endsWith(`${runId}/ledger.jsonl`))).toBe(true);
  });

  it('declares its capabilities, with the kernel facilities the host has', () => {
    const caps = provider.capabilities;
    expect(caps.forwardPolicies).not.toContain('sequential');
    expect(caps.privateNodeFiles).toBe(true);
    // The cluster is up over flannel.1 and conntrack: the host's kernel has both.
    expect(caps.kernel?.vxlan).toBe(true);
    expect(caps.kernel?.conntrack).toBe(true);
    expect(cluster.enterHint).toBe(`ip netns exec vxc-${runId}-node-1 bash`);
  });

  it('collectLogs writes every node\'s tables and the daemon logs into a local directory', async () => {
    const files = await cluster.collectLogs(logDir);
    const names = files.map((f) => basename(f));
    expect(names).toEqual(expect.arrayContaining(['fabric.txt', 'node-1.txt', 'node-2.txt', 'node-3.txt']));
    expect(names.some((n) => /^daemon-.*unbound\.log$/.test(n))).toBe(true);
    for (const f of files) expect(statSync(f).size, f).toBeGreaterThan(0);
    const node1 = readFileSync(join(logDir, 'node-1.txt'), 'utf8');
    expect(node1).toMatch(/### ip neigh\n[^#]*lladdr [0-9a-f:]+ PERMANENT/);
    expect(node1).toContain('dst 172.18.0.'); // bridge fdb: a peer's VTEP
    expect(node1).toContain('-A KUBE-SERVICES');
    expect(node1).toMatch(/### conntrack -S\ncpu=/);
  });

  it('flannel.1 carries its lease\'s VtepMAC; a restart after the device is gone draws a new one that reaches running peers only', async () => {
    const mac = async (node: string) => (JSON.parse((await cluster.node(node).exec(['ip', '-j', 'link', 'show', 'flannel.1'])).stdout) as { address: string }[])[0]!.address;
    const leases = await cluster.flannel.leases();
    for (const l of leases) expect(await mac(l.node), l.node).toBe(l.vtepMAC);
    const old = leases.find((l) => l.node === 'node-3')!;
    const vtepIP = old.subnet.split('/')[0]!;
    await cluster.flannel.freeze(['node-2']);
    await cluster.node('node-3').exec(['ip', 'link', 'del', 'flannel.1']);
    await cluster.flannel.restart('node-3');
    const fresh = (await cluster.flannel.leases()).find((l) => l.node === 'node-3')!;
    expect(fresh.vtepMAC).not.toBe(old.vtepMAC);
    expect(await mac('node-3')).toBe(fresh.vtepMAC);
    const neigh = async (node: string) => (await cluster.node(node).exec(['ip', 'neigh', 'show', vtepIP, 'dev', 'flannel.1'])).stdout;
    expect(await neigh('node-1')).toContain(fresh.vtepMAC);
    expect(await neigh('node-2')).toContain(old.vtepMAC); // frozen: stale, as in seed 002
    await cluster.flannel.thaw(['node-2']);
    expect(await neigh('node-2')).toContain(fresh.vtepMAC);
  });

  it('list() shows the kept run and down(runId) removes it through the Host', async () => {
    const runs = await provider.list();
    const mine = runs.find((r) => r.runId === runId);
    const count = (await runNamespaces(new LocalHost(), runId)).length;
    expect(mine?.what).toContain(`${count} namespaces`);
    expect(mine?.what).toMatch(/[1-9]\d* processes/);

    const before = host.calls.length;
    const r = await provider.down(runId);
    expect(r.problems).toEqual([]);
    expect(r.removed).toEqual([runId]);
    expect(await runNamespaces(new LocalHost(), runId)).toEqual([]);
    const teardown = host.calls.slice(before);
    const deleted = teardown
      .filter((c) => c.member === 'run' && c.what[0] === 'ip' && c.what.includes('-batch'))
      .flatMap((c) => [...(c.input ?? '').matchAll(/^netns del (\S+)$/gm)].map((m) => m[1]!));
    expect(deleted.length).toBe(count);
    expect(teardown.some((c) => c.member === 'kill')).toBe(true);
    expect((await provider.list()).find((x) => x.runId === runId)).toBeUndefined();
  });
});
