import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { deadUpstream } from '../../faults/dead-upstream.ts';
import { unmetRequirement } from '../../faults/fault.ts';
import { FAULTS } from '../../faults/index.ts';
import { macChurn } from '../../faults/mac-churn.ts';
import { MITIGATIONS } from '../../mitigations/index.ts';
import { neighResync } from '../../mitigations/neigh-resync.ts';
import { extraNameserver } from '../../mitigations/resolv-options.ts';
import { forwarderPolicy } from '../../mitigations/upstreams.ts';
import { testContext } from '../../testing.ts';
import { planKind } from './plan.ts';
import { KIND_CAPABILITIES, type KindCluster } from './provider.ts';

/**
 * The real faults and mitigations, applied through the recording kind cluster (planKind's provider): what
 * is asserted are the commands they issue through the seam, in order — never a list of steps written here.
 */
const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));

async function recordingCluster(opts: Parameters<typeof planKind>[0] = {}) {
  const plan = planKind(opts);
  const cluster = (await plan.provider.up(topology, { runId: 'dry-run', clients: ['musl', 'glibc'] })) as KindCluster;
  const mark = plan.entries.length;
  const commands = () => plan.entries.slice(mark).flatMap((e) => (e.argv ? [e.argv.join(' ')] : []));
  const ctx = <P>(params: P, targets = ['web.default.svc.cluster.local.']) => testContext(cluster, cluster.clients.musl!, params, { targets });
  return { plan, cluster, commands, ctx };
}

/** Index of the first command matching re at or after `from`; fails the test when there is none. */
function at(commands: readonly string[], re: RegExp, from = 0): number {
  const i = commands.findIndex((c, n) => n >= from && re.test(c));
  expect(i, `${re} after command ${from}`).toBeGreaterThanOrEqual(0);
  return i;
}

describe('mac-churn on kind: the restart waits for the lease to carry flannel.1\'s new MAC', () => {
  it('freezes the peers, restarts node-3\'s flanneld, waits for lease = flannel.1 MAC, and the undo thaws the peers', async () => {
    const { commands, ctx } = await recordingCluster();
    const c = ctx({ node: 'node-3' });
    await macChurn.apply(c, 'stale-peers');
    const applied = commands();
    const freeze = at(applied, /^docker exec vxchaos-dry-run-control-plane pkill -STOP -x flanneld$/);
    at(applied, /^docker exec vxchaos-dry-run-worker pkill -STOP -x flanneld$/, freeze);
    const del = at(applied, /-n kube-flannel delete pod kube-flannel-ds-node-3 --wait=true/, freeze);
    const ready = at(applied, /-n kube-flannel get pods -l app=flannel --field-selector spec\.nodeName=vxchaos-dry-run-worker2 -o json$/, del);
    const lease = at(applied, / get nodes -o json$/, ready);
    at(applied, /^docker exec vxchaos-dry-run-worker2 cat \/sys\/class\/net\/flannel\.1\/address$/, lease);
    expect(applied.some((x) => /pkill -CONT/.test(x))).toBe(false);
    expect(await c.undo.unwind()).toEqual([]);
    const undone = commands().slice(applied.length);
    expect(undone).toContain('docker exec vxchaos-dry-run-control-plane pkill -CONT -x flanneld');
    expect(undone).toContain('docker exec vxchaos-dry-run-worker pkill -CONT -x flanneld');
  });

  it('neigh-resync writes the MAC the lease carries once the restart is over, never one read before it', async () => {
    const { commands, ctx } = await recordingCluster();
    const c = ctx({ node: 'node-3' });
    await macChurn.apply(c, 'stale-peers');
    const mark = commands().length;
    await neighResync.apply(c);
    const resync = commands().slice(mark);
    // the lease it writes from is read after the restart waited for flannel.1's MAC
    expect(resync.some((x) => /ip neigh replace .* lladdr <node-3 VtepMAC>/.test(x) || /bridge fdb replace <node-3 VtepMAC>/.test(x))).toBe(true);
    await c.undo.unwind();
  });
});

describe('dead-upstream and forwarder-policy on kind: replicas read again after each rollout', () => {
  it('the dead pod goes first in CoreDNS\'s forward, next to the run\'s upstream DNS, and is taken out by the undo', async () => {
    const { commands, ctx } = await recordingCluster();
    const c = ctx({ policy: 'random' as const }, ['test.example.cn']);
    await deadUpstream.apply(c, 'native');
    const cmds = commands();
    const patch = cmds.find((x) => x.includes('patch configmap coredns'))!;
    expect(patch).toMatch(/forward \. 198\.51\.100\.54 198\.51\.100\.53 \{\\n\s+policy random\\n\s+max_fails 0/);
    const restart = at(cmds, /rollout restart deployment\/coredns$/);
    const settled = at(cmds, /rollout status deployment\/coredns/, restart);
    at(cmds, /get pods -l k8s-app=kube-dns -o json$/, settled);
    await c.undo.unwind();
    const undone = commands().slice(cmds.length).find((x) => x.includes('patch configmap coredns'))!;
    expect(undone).toMatch(/forward \. 198\.51\.100\.53 \{\\n\s+max_concurrent 1000\\n\s+\}/);
  });

  it('forwarder-policy warms up the replicas the rollout created, not the ones it replaced', async () => {
    const { cluster, commands, ctx } = await recordingCluster();
    expect(cluster.dnsPods.map((p) => p.ip)).toEqual(['<coredns on node-1 IP>', '<coredns on node-2 IP>', '<coredns on node-3 IP>']);
    const c = ctx({ policy: 'random' as const }, ['test.example.cn']);
    await deadUpstream.apply(c, 'native');
    await forwarderPolicy.apply({ ...c, params: { policy: 'health-checked' } });
    const digs = commands().filter((x) => / -- dig /.test(x));
    expect(digs.length).toBeGreaterThan(0);
    for (const d of digs) expect(d).toMatch(/@<coredns on node-\d IP after rollout 2> test\.example\.cn\. (A|AAAA)$/);
    expect(cluster.dnsPods.map((p) => p.name)).toEqual(['coredns-node-1-r2', 'coredns-node-2-r2', 'coredns-node-3-r2']);
    await c.undo.unwind();
  });
});

describe('extra-nameserver on kind: the upstream is an address inside the run', () => {
  it('adds the upstream DNS pod\'s address to the client\'s resolv.conf instead of throwing', async () => {
    const { plan, ctx } = await recordingCluster();
    const c = ctx({}, ['test.example.cn']);
    await extraNameserver.apply(c);
    const write = plan.entries.find((e) => e.argv?.includes('vxchaos-client-musl') && e.input !== undefined && e.argv.includes('/etc/resolv.conf'));
    expect(write?.input).toMatch(/^nameserver 198\.51\.100\.53$/m);
    await c.undo.unwind();
  });
});

describe('KUBE-POSTROUTING cells on kind', () => {
  it('are skipped with the reason: the fault and both kube-proxy mitigations need ownsKubeProxyChains', () => {
    const fault = FAULTS['checksum-offload']!;
    const reason = unmetRequirement(fault.requires?.({}, fault.defaultMode) ?? [], KIND_CAPABILITIES);
    expect(reason).toMatch(/kube-proxy|KUBE-POSTROUTING/);
    for (const m of ['kube-proxy-fix', 'no-random-fully']) {
      const mit = MITIGATIONS[m]!;
      expect(unmetRequirement(mit.requires?.({}, '') ?? [], KIND_CAPABILITIES), m).toMatch(/kube-proxy|KUBE-POSTROUTING/);
    }
    // what kind can do is not refused: resolver-side mitigations need nothing it lacks
    expect(unmetRequirement(MITIGATIONS['single-request']!.requires?.({}, '') ?? [], KIND_CAPABILITIES)).toBeUndefined();
  });
});
