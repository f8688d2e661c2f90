import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { UPSTREAM_DNS } from './cluster-dns.ts';
import { nodeImage } from './config.ts';
import { flannelPin } from './flannel.ts';
import { planKind } from './plan.ts';
import { NODE_LOCAL_DNS_PIN } from './pins.ts';
import type { KindCluster } from './provider.ts';

const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));

/** The heredoc that follows the first command line matching `re`. */
export function stdinOf(plan: string, re: RegExp): string {
  const lines = plan.split('\n');
  const i = lines.findIndex((l) => l.startsWith('$ ') && re.test(l));
  expect(i, `no command matching ${re}`).toBeGreaterThanOrEqual(0);
  const end = lines.indexOf('EOF', i);
  return lines.slice(i + 1, end).join('\n');
}

/** Each pattern is searched for after the previous one: found means found in this order. */
export function expectInOrder(text: string, patterns: readonly RegExp[]): void {
  const lines = text.split('\n');
  let from = 0;
  for (const re of patterns) {
    const i = lines.findIndex((l, n) => n >= from && re.test(l));
    expect(i, `${re} after line ${from}`).toBeGreaterThanOrEqual(0);
    from = i + 1;
  }
}

/** A bring-up of the recording cluster: the provider's real up(), commands recorded, nothing run. */
async function bringUp(opts: Parameters<typeof planKind>[0] = {}, clients: ('musl' | 'glibc')[] = ['musl', 'glibc']) {
  const plan = planKind({ suite: 'flannel-arp', ...opts });
  await plan.provider.preflight();
  const cluster = (await plan.provider.up(topology, { runId: 'dry-run', clients })) as KindCluster;
  await cluster.down();
  return { plan, cluster, text: plan.render() };
}

describe('kind plan of a bring-up (the provider\'s own code over a recording shell)', async () => {
  const { text, cluster } = await bringUp();

  it('runs the steps in order: fetch, build, create, flannel, image load, upstream DNS, CoreDNS, pods, teardown', () => {
    expectInOrder(text, [
      /^## 2\. fetch and verify the pinned kube-flannel v0\.28\.9 manifest$/,
      /^# fetch https:\/\/raw\.githubusercontent\.com\/flannel-io\/flannel\/v0\.28\.9\/Documentation\/kube-flannel\.yml$/,
      /^\$ docker build --provenance=false -f images\/probe\/Dockerfile\.alpine /,
      /^\$ kind create cluster --name vxchaos-dry-run --config - --kubeconfig ~\/\.kube\/vxchaos\/vxchaos-dry-run\.yaml --retain/,
      /^\$ docker cp .*bridge vxchaos-dry-run-worker2:\/opt\/cni\/bin\/bridge$/,
      /^## \d+\. apply flannel v0\.28\.9$/,
      /rollout status daemonset\/kube-flannel-ds/,
      /^\$ kind load docker-image vxchaos\/probe:musl-\w+ vxchaos\/probe:glibc-\w+ --name vxchaos-dry-run$/,
      /^## \d+\. upstream DNS \(dnsmasq\) serving test\.example\.cn$/,
      new RegExp(`wait --for=condition=Ready pod/${UPSTREAM_DNS}`),
      /^## \d+\. CoreDNS: forward to the upstream DNS, 3 replicas on node-1, node-2, node-3$/,
      /-n kube-system patch configmap coredns --type=merge -p /,
      /scale deployment\/coredns --replicas=3$/,
      /^## \d+\. create client pods \(musl, glibc\)$/,
      /wait --for=condition=Ready pod\/vxchaos-client-musl pod\/vxchaos-client-glibc/,
      /exec -n default vxchaos-client-musl -c probe -- \/usr\/local\/bin\/vxprobe -c 1 web\.default\.svc\.cluster\.local\.$/,
      /^## \d+\. teardown$/,
      /^\$ kind delete cluster --name vxchaos-dry-run /,
    ]);
  });

  it('serves the topology\'s upstream names from a dnsmasq pod on the underlay and points CoreDNS at it', () => {
    const upstream = text.slice(text.indexOf('upstream DNS (dnsmasq)'), text.indexOf('CoreDNS: forward'));
    const manifest = parse(stdinOf(upstream, /apply -f -/)) as Record<string, any>;
    expect(manifest.metadata.name).toBe(UPSTREAM_DNS);
    expect(manifest.spec.hostNetwork).toBe(true);
    expect(manifest.spec.nodeSelector).toEqual({ 'vxchaos.io/node': 'node-1' });
    expect(manifest.spec.containers[0].command).toEqual(['dnsmasq']);
    expect(manifest.spec.containers[0].args).toEqual(expect.arrayContaining(['--host-record=test.example.cn,203.0.113.10', '--address=/#/', '--no-resolv', '--listen-address=$(NODE_IP)']));
    // CoreDNS's forward now names the upstream pod's address (its node's), with the default health checks
    const patch = /patch configmap coredns --type=merge -p '(.*)'$/m.exec(text)?.[1];
    const corefile = (JSON.parse(patch!) as { data: { Corefile: string } }).data.Corefile;
    expect(corefile).toMatch(/forward \. 198\.51\.100\.53 \{\n\s+max_concurrent 1000\n\s+\}/);
    expect(corefile).not.toContain('/etc/resolv.conf');
    expect(cluster.upstream).toBe('198.51.100.53');
  });

  it('reads the CoreDNS replicas after the rollout has settled', () => {
    expect(cluster.dnsPods.map((p) => `${p.name}@${p.node}`)).toEqual(['coredns-node-1@node-1', 'coredns-node-2@node-2', 'coredns-node-3@node-3']);
  });

  it('shows the generated kind config, which parses and pins the node image by digest', () => {
    const config = parse(stdinOf(text, /^\$ kind create cluster/)) as Record<string, any>;
    expect(config.networking).toMatchObject({ disableDefaultCNI: true, kubeProxyMode: 'iptables', podSubnet: '10.244.0.0/16' });
    expect(config.nodes).toHaveLength(3);
    expect(config.nodes[0].image).toBe(nodeImage().image);
  });

  it('shows the URL and sha256 it fetches kube-flannel from and what it changes in it, not the manifest', () => {
    const pin = flannelPin('v0.28.9');
    const fetchStep = text.slice(text.indexOf('## 2. fetch and verify'), text.indexOf('## 3. '));
    expect(fetchStep).toContain(`# fetch ${pin.url}\n`);
    expect(fetchStep).toContain(`# verify sha256 ${pin.sha256} (a mismatch stops the run and applies nothing`);
    expect(fetchStep).toContain('# render: ConfigMap kube-flannel-cfg, net-conf.json: Network=10.244.0.0/16, Backend.Type=vxlan, Backend.VNI=1, Backend.Port=8472; everything else as upstream ships it');
    expect(text).toContain(`# NodeLocal DNSCache (nodelocaldns mitigation): ${NODE_LOCAL_DNS_PIN.url} (sha256 ${NODE_LOCAL_DNS_PIN.sha256})`);
    expect(text).not.toMatch(/kube-flannel-ds\n|^kind: DaemonSet$/m);
  });

  it('reads back placeholders, never invented values; the kubeconfig is outside the report directory', () => {
    expect(text).toMatch(/^# nothing below was executed/m);
    expect(text).not.toContain(CLUSTERS_DIR);
    expect(text).not.toMatch(/reports\/[^ ]*kubeconfig/);
    expect(text).toMatch(/--kubeconfig ~\/\.kube\/vxchaos\/vxchaos-dry-run\.yaml/);
    // the note about upstream DNS going to the runner's resolver is gone: the names are served in the run
    expect(text).not.toMatch(/runner's resolver/);
  });

  it('honours the requested versions and clients', async () => {
    const { text: p } = await bringUp({ k8sVersion: '1.34', flannelVersion: 'v0.24.0' }, ['glibc']);
    expect(p).toContain(nodeImage('1.34').image);
    expect(p).toMatch(/^## \d+\. apply flannel v0\.24\.0$/m);
    expect(p).toContain(`# verify sha256 ${flannelPin('v0.24.0').sha256} `);
    expect(p).not.toContain('vxchaos-client-musl');
  });

  it('heads commands with the labels the runner reports through progress', async () => {
    const plan = planKind();
    const c = (await plan.provider.up(topology, { runId: 'dry-run', clients: ['musl'] })) as KindCluster;
    plan.progress.step('cell 1/1: musl × mac-churn(stale-peers) × none');
    plan.progress.info('mac-churn: restarting flanneld on node-3');
    await c.flannel.restart('node-3');
    const text = plan.render();
    const cell = text.slice(text.indexOf('. cell 1/1: musl × mac-churn(stale-peers) × none'));
    expect(cell.split('\n')[1]).toBe('# mac-churn: restarting flanneld on node-3');
    expect(cell).toMatch(/-n kube-flannel delete pod kube-flannel-ds-node-3 --wait=true/);
    // the restart waits for the lease to carry flannel.1's MAC on that node
    expect(cell).toMatch(/^\$ docker exec vxchaos-dry-run-worker2 cat \/sys\/class\/net\/flannel\.1\/address$/m);
  });
});
