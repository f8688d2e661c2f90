import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import type { ExecResult, Shell } from '../../exec/shell.ts';
import { nodeLocalDns as nodeLocalDnsMitigation } from '../../mitigations/nodelocaldns.ts';
import { kubectl, type KindContext } from './context.ts';
import type { KindManifests } from './fetch-pinned.ts';
import { KindNode } from './node.ts';
import { KindNodeLocalDns, lookupResult, NODE_LOCAL_DNS_SELECTOR, nodeCacheLookupArgv } from './nodelocaldns.ts';
import { planKind } from './plan.ts';
import type { KindCluster } from './provider.ts';
import { NODE_LOCAL_DNS_PIN } from './pins.ts';
import { testContext } from '../../testing.ts';

const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));
const MANIFEST = '# rendered node-local-dns\n';
const manifests: KindManifests = { flannel: async () => '', nodeLocalDns: async () => MANIFEST };
const containers = ['vxc-t-control-plane', 'vxc-t-worker', 'vxc-t-worker2'];
const FQDN = 'kube-dns.kube-system.svc.cluster.local.';
const OK = '# vxprobe 1\nL 0 0 0 OK 1\n# done samples=1 wall_us=0\n';

interface Call {
  argv: string[];
  input?: string;
}

/** A scripted cluster: answers each command from `reply`, records every call with its stdin. */
function fixture(reply: (argv: readonly string[], n: number) => Partial<ExecResult> | string) {
  const calls: Call[] = [];
  const shell: Shell = async (argv, o) => {
    calls.push({ argv: [...argv], ...(o?.input !== undefined ? { input: o.input } : {}) });
    const r = reply(argv, calls.length);
    return typeof r === 'string' ? { stdout: r, stderr: '', exitCode: 0 } : { stdout: '', stderr: '', exitCode: 0, ...r };
  };
  const ctx: KindContext = { shell, cluster: 't', kubeconfig: '/k', podExec: async () => ({ stdout: '', stderr: '', exitCode: 0 }) };
  const nodes = topology.nodes.map((n, i) => new KindNode(ctx, n.name, containers[i]!, `172.18.0.${i + 2}`, `10.244.${i}.0/24`));
  const control = new KindNodeLocalDns(ctx, topology, manifests, () => nodes, { timeoutMs: 2_000, intervalMs: 1 });
  return { calls, control, ctx };
}

const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
const pod = (node: string, status: object = ready) => ({ metadata: { name: `node-local-dns-${node}`, namespace: 'kube-system', uid: node }, spec: { nodeName: node, containers: [] }, status });
const pods = (...items: object[]) => JSON.stringify({ items });
const isPodList = (argv: readonly string[]) => argv.includes(NODE_LOCAL_DNS_SELECTOR);
const isLookup = (argv: readonly string[]) => argv.includes('unshare');
const nodeOf = (argv: readonly string[]) => argv[2];

describe('NodeLocal DNSCache on kind (nodeLocalDns control)', () => {
  it('asks each node\'s cache through the node\'s glibc resolver, in a private mount namespace', () => {
    const argv = nodeCacheLookupArgv('169.254.20.10', FQDN);
    expect(argv.slice(0, 4)).toEqual(['unshare', '--mount', 'sh', '-c']);
    expect(argv[4]).toContain('mount --bind /tmp/resolv.conf /etc/resolv.conf');
    expect(argv.slice(5)).toEqual(['sh', '169.254.20.10', '/usr/local/bin/vxprobe', '-c', '1', FQDN]);
    expect(lookupResult(OK)).toBe('OK');
    expect(lookupResult('L 0 0 5000 EAI_AGAIN 1\n')).toBe('EAI_AGAIN');
    expect(lookupResult('')).toBeUndefined();
  });

  it('enable: applies the pinned addon, then waits for a Ready pod on every node and every cache to answer', async () => {
    let lookups = 0;
    const { calls, control, ctx } = fixture((argv, n) => {
      // The pod on worker2 is not Ready at first, then it is.
      if (isPodList(argv)) return n < 4 ? pods(pod(containers[0]!), pod(containers[1]!), pod(containers[2]!, { phase: 'Pending' })) : pods(...containers.map((c) => pod(c)));
      // worker's cache does not answer at its first try.
      if (isLookup(argv)) return nodeOf(argv) === containers[1] && lookups++ === 0 ? { stdout: 'L 0 0 1000 EAI_AGAIN 1\n', exitCode: 1 } : OK;
      return '';
    });
    expect(await control.enable()).toEqual({ address: '169.254.20.10' });
    expect(calls[0]).toEqual({ argv: kubectl(ctx, 'apply', '-f', '-'), input: MANIFEST });
    expect(calls[1]!.argv).toEqual(kubectl(ctx, '-n', 'kube-system', 'rollout', 'status', 'daemonset/node-local-dns', '--timeout=180s'));
    expect(calls.filter((c) => isPodList(c.argv))).toHaveLength(2);
    const asked = calls.filter((c) => isLookup(c.argv));
    for (const c of containers) {
      expect(asked.some((a) => a.argv.join(' ') === ['docker', 'exec', c, ...nodeCacheLookupArgv('169.254.20.10', FQDN)].join(' '))).toBe(true);
    }
    expect(asked.filter((a) => nodeOf(a.argv) === containers[1])).toHaveLength(2);
    // Every lookup comes after every node had a Ready pod.
    expect(calls.findIndex((c) => isLookup(c.argv))).toBeGreaterThan(calls.findLastIndex((c) => isPodList(c.argv)));
    // Enabled once: a second enable changes nothing.
    const before = calls.length;
    expect(await control.enable()).toEqual({ address: '169.254.20.10' });
    expect(calls).toHaveLength(before);
  });

  it('disable: deletes the addon and waits until the pods, node-cache\'s interface and its rules are gone', async () => {
    let deleted = false;
    let linkChecks = 0;
    const { calls, control, ctx } = fixture((argv) => {
      if (argv.includes('delete')) deleted = true;
      if (isPodList(argv)) return deleted ? (calls.filter((c) => isPodList(c.argv)).length > 2 ? pods() : pods({ ...pod(containers[2]!), metadata: { name: 'x', namespace: 'kube-system', uid: 'x', deletionTimestamp: 'now' } })) : pods(...containers.map((c) => pod(c)));
      if (isLookup(argv)) return OK;
      // worker2 still shows the interface at the first look.
      if (argv.includes('link') && nodeOf(argv) === containers[2] && linkChecks++ === 0) return '1: lo: <LOOPBACK,UP> mtu 65536\n9: nodelocaldns: <BROADCAST,NOARP> mtu 1500 qdisc noop\n';
      if (argv.includes('iptables-save')) return '*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n';
      return '';
    });
    await control.disable(); // not enabled: nothing to do
    expect(calls).toEqual([]);
    await control.enable();
    const from = calls.length;
    await control.disable();
    const tail = calls.slice(from);
    expect(tail[0]).toEqual({ argv: kubectl(ctx, 'delete', '--ignore-not-found', '--wait=true', '-f', '-'), input: MANIFEST });
    expect(tail.filter((c) => isPodList(c.argv)).length).toBeGreaterThanOrEqual(2);
    for (const c of containers) {
      expect(tail.some((t) => t.argv.join(' ') === `docker exec ${c} ip -o link show`)).toBe(true);
      expect(tail.some((t) => t.argv.join(' ') === `docker exec ${c} iptables-save -t raw`)).toBe(true);
    }
    expect(tail.filter((t) => t.argv.includes('link') && nodeOf(t.argv) === containers[2])).toHaveLength(2);
    // Off now: another disable does nothing, another enable installs again.
    const after = calls.length;
    await control.disable();
    expect(calls).toHaveLength(after);
  });

  it('a cache that never answers fails enable, naming the node, and removes the addon again', async () => {
    const { calls, control, ctx } = fixture((argv) => {
      const deleted = calls.some((c) => c.argv.includes('delete'));
      if (isPodList(argv)) return deleted ? pods() : pods(...containers.map((c) => pod(c)));
      if (isLookup(argv)) return nodeOf(argv) === containers[1] ? { stdout: 'L 0 0 5000 EAI_AGAIN 1\n', stderr: '', exitCode: 1 } : OK;
      return '';
    });
    const err = (await control.enable().then(() => undefined, (e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/node-local-dns on node-2 to answer kube-dns\.kube-system\.svc\.cluster\.local\. at 169\.254\.20\.10; last check: lookup result EAI_AGAIN \(exit 1\)/);
    expect(calls.some((c) => c.argv.join(' ') === kubectl(ctx, 'delete', '--ignore-not-found', '--wait=true', '-f', '-').join(' '))).toBe(true);
    const after = calls.length;
    await control.disable(); // removed already
    expect(calls).toHaveLength(after);
  });

  it('the nodelocaldns mitigation on kind: the DaemonSet, every node\'s cache asked, the client\'s resolv.conf, all undone (recording cluster)', async () => {
    const p = planKind();
    const cluster = (await p.provider.up(topology, { runId: 'dry-run', clients: ['musl'] })) as KindCluster;
    p.progress.step('cell: musl × conntrack-race(emulated) × nodelocaldns');
    const mctx = testContext(cluster, cluster.clients.musl!, {});
    const applied = await nodeLocalDnsMitigation.apply(mctx);
    expect(applied.counters).toEqual({ 'nodelocaldns.nodes': 3 });
    expect(await mctx.undo.unwind()).toEqual([]);
    const plan = p.render();
    const cell = plan.slice(plan.search(/^## \d+\. cell: musl × conntrack-race\(emulated\) × nodelocaldns$/m));
    const cmds = cell.split('\n').filter((l) => l.startsWith('$ '));
    const at = (re: RegExp) => {
      const i = cmds.findIndex((c) => re.test(c));
      expect(i, `${re}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const apply = at(/ apply -f - <<'EOF'$/);
    expect(cell).toContain(`<${NODE_LOCAL_DNS_PIN.name}: the verified download with its placeholders filled as noted>`);
    const rollout = at(/rollout status daemonset\/node-local-dns/);
    const lookups = ['control-plane', 'worker', 'worker2'].map((n) => at(new RegExp(`^\\$ docker exec vxchaos-dry-run-${n} unshare --mount sh -c .* sh 169\\.254\\.20\\.10 /usr/local/bin/vxprobe -c 1 kube-dns\\.kube-system\\.svc\\.cluster\\.local\\.$`)));
    const write = at(/exec -i -n default vxchaos-client-musl -c probe -- sh -c 'cat > "\$1"' sh \/etc\/resolv\.conf <<'EOF'$/);
    // the pod's own resolv.conf (kubelet's ClusterFirst one) with the cache as its only nameserver
    const heredoc = cell.slice(cell.indexOf(`sh /etc/resolv.conf <<'EOF'\n`)).split('\n').slice(1);
    const written = heredoc.slice(0, heredoc.indexOf('EOF'));
    expect(written.filter((l) => l.startsWith('nameserver '))).toEqual(['nameserver 169.254.20.10']);
    expect(written).toContain('search default.svc.cluster.local svc.cluster.local cluster.local');
    const del = at(/ delete --ignore-not-found --wait=true -f - <<'EOF'$/);
    const linkGone = at(/^\$ docker exec vxchaos-dry-run-worker2 ip -o link show$/);
    expect(apply).toBeLessThan(rollout);
    expect(rollout).toBeLessThan(Math.min(...lookups));
    expect(Math.max(...lookups)).toBeLessThan(write);
    // revert: the resolv.conf goes back first, then the DaemonSet.
    expect(cmds.slice(write + 1, del).some((c) => c.includes('vxchaos-client-musl') && c.includes('/etc/resolv.conf'))).toBe(true);
    expect(del).toBeLessThan(linkGone);
  });
});
