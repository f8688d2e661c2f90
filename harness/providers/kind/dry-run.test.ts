import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareSuite } from '../../cells.ts';
import { runSuite } from '../../runner.ts';
import { UPSTREAM_DNS } from './cluster-dns.ts';
import { planKind, type PlanKindOptions } from './plan.ts';

/**
 * `vxchaos suite <name> --provider kind --dry-run` as the CLI wires it: the real runner (bring-up, every
 * cell's fault, mitigation, probe and undo) over planKind's recording provider. Nothing runs, nothing is judged.
 */
const out = mkdtempSync(join(tmpdir(), 'vxchaos-kind-dry-run-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function dryRun(suiteName: string, opts: PlanKindOptions = {}) {
  const plan = planKind({ suite: suiteName, ...opts });
  const prepared = prepareSuite(suiteName);
  const { matrix } = await runSuite({ prepared, provider: plan.provider, progress: plan.progress, quick: false, keep: false, outDir: out, runId: 'dry-run', dryRun: true });
  return { plan, matrix, text: plan.render() };
}

/** The section of a rendered plan that a `## n. <title>` header starting with `title` opens. */
function section(text: string, title: string): string {
  const start = text.search(new RegExp(`^## \\d+\\. ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
  expect(start, `no section ${title}`).toBeGreaterThanOrEqual(0);
  const next = text.indexOf('\n## ', start + 1);
  return text.slice(start, next < 0 ? undefined : next);
}

describe.each(['conntrack-race', 'dead-upstream'])('the %s plan on kind', (suiteName) => {
  it('is complete: the upstream DNS pod, CoreDNS forwarding to it, every cell with its commands, the teardown', async () => {
    const { matrix, text } = await dryRun(suiteName);
    expect(section(text, 'upstream DNS (dnsmasq) serving test.example.cn')).toContain(`pod/${UPSTREAM_DNS}`);
    expect(section(text, 'CoreDNS: forward to the upstream DNS')).toMatch(/patch configmap coredns .*forward \. 198\.51\.100\.53 /);
    // every cell ran through the real runner: nothing errored, nothing was judged
    expect(matrix.cells.length).toBeGreaterThan(0);
    for (const c of matrix.cells) expect(`${c.fault}/${c.mitigation}: ${c.verdict} ${c.reason}`).toMatch(/: skipped dry run: nothing measured$/);
    const cells = text.match(/^## \d+\. \[\d+\/\d+\] .*$/gm) ?? [];
    expect(cells).toHaveLength(matrix.cells.length);
    for (const header of cells) {
      const body = section(text, header.replace(/^## \d+\. /, ''));
      // each cell probes through a client pod's libc
      expect(body, header).toMatch(/exec -n default vxchaos-client-(musl|glibc) -c probe -- \/usr\/local\/bin\/vxprobe -t \d+ -d \d+/);
    }
    expect(text).toMatch(/^## \d+\. teardown$/m);
    expect(text).toMatch(/^\$ kind delete cluster --name vxchaos-dry-run /m);
  });
});

describe('cells on kind through the runner', () => {
  it('dead-upstream: the fault\'s rollout is undone, and forwarder-policy warms up the replicas of the latest rollout', async () => {
    const { text } = await dryRun('dead-upstream');
    const fp = section(text, '[5/');
    const digs = fp.split('\n').filter((l) => / -- dig .*@/.test(l));
    expect(digs.length).toBeGreaterThan(0);
    // rollouts: bring-up is 0; this cell's fault makes one more, its mitigation another (each cell undoes its own)
    for (const d of digs) expect(d).toMatch(/@'?<coredns on node-\d IP after rollout \d+>'? /);
    const last = Math.max(...[...fp.matchAll(/after rollout (\d+)/g)].map((m) => Number(m[1])));
    for (const d of digs) expect(d).toContain(`after rollout ${last}>`);
  });

  it('checksum-offload: KUBE-POSTROUTING cells are skipped with the reason, shown in the plan, and issue no command', async () => {
    const { matrix, text } = await dryRun('checksum-offload');
    const skipped = matrix.cells.filter((c) => c.fault === 'checksum-offload');
    expect(skipped.length).toBeGreaterThan(0);
    for (const c of skipped) expect(c.reason).toMatch(/^skipped on kind: .*(kube-proxy|KUBE-POSTROUTING)/);
    const commands = text.split('\n').filter((l) => l.startsWith('$ '));
    expect(commands.filter((l) => /iptables -t nat|KUBE-POSTROUTING|ethtool/.test(l))).toEqual([]);
    expect(text.match(/^# → \[\d+\/8\] .*: SKIPPED — skipped on kind: .*KUBE-POSTROUTING/gm)).toHaveLength(skipped.length);
    expect(matrix.cells.find((c) => c.fault === 'none')?.reason).toBe('dry run: nothing measured');
  });

  it('a node-resolve cell never writes a node\'s real resolv.conf: a private copy, bind-mounted for the probe only', async () => {
    const file = join(out, 'node-resolve.yaml');
    writeFileSync(
      file,
      'name: node-resolve\ndescription: the node resolves through its own resolv.conf\ntopology: three-node\nclients: [glibc]\n' +
        'workload: { kind: resolve, source: node, targets: [web.default.svc.cluster.local.], threads: 1, durationS: 1 }\n' +
        'cells:\n  - { fault: none, mitigation: none, expect: clean }\n',
    );
    const { matrix, text } = await dryRun(file);
    expect(matrix.cells[0]?.reason).toBe('dry run: nothing measured');
    expect(text).not.toMatch(/sh -c 'cat > "\$1"' sh \/etc\/resolv\.conf/);
    expect(text).toMatch(/sh -c 'cat > "\$1"' sh \/tmp\/vxchaos-files\/\d+_etc_resolv\.conf <<'EOF'\nnameserver 10\.96\.0\.10\n/);
    expect(text).toMatch(/unshare --mount sh -c .* sh \/tmp\/vxchaos-files\/\d+_etc_resolv\.conf \/etc\/resolv\.conf -- \/usr\/local\/bin\/vxprobe /);
  });

  it('a cell that fails gets its logs collected (kind export logs, the nodes\' tables, pod logs) and the run goes on', async () => {
    // flanneld cannot be stopped on the peers: mac-churn stale-peers throws half-way
    const { matrix, text } = await dryRun('flannel-arp', { reply: (argv) => (argv.includes('-STOP') ? { stdout: '', exitCode: 1 } : undefined) });
    const failed = matrix.cells.filter((c) => c.verdict === 'error');
    expect(failed.length).toBeGreaterThan(0);
    for (const c of failed) expect(`${c.fault}/${c.faultMode}`).toBe('mac-churn/stale-peers');
    expect(matrix.cells.some((c) => c.fault === 'mac-churn' && c.faultMode === 'live-peers' && c.verdict === 'skipped')).toBe(true);
    const first = matrix.cells.findIndex((c) => c.verdict === 'error') + 1;
    const cell = section(text, `[${first}/`);
    expect(cell).toMatch(new RegExp(`^\\$ kind export logs ${out.replaceAll('/', '\\/')}\\/dry-run\\/logs\\/cell-${first}\\/kind --name vxchaos-dry-run$`, 'm'));
    for (const argv of ['ip neigh show', 'bridge fdb show', 'iptables-save', 'conntrack -S']) expect(cell).toContain(`$ docker exec vxchaos-dry-run-worker2 ${argv}`);
    expect(cell).toMatch(/ logs -l k8s-app=kube-dns /);
    expect(cell).toMatch(/ -n kube-flannel logs -l app=flannel /);
    expect(cell).not.toMatch(/kubeconfig.*(cp|cat)|cp .*kubeconfig/);
  });
});
