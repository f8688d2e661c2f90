import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { nodeImage } from './config.ts';
import { flannelPin } from './flannel.ts';
import { kindPlan, kindPlanWith } from './plan.ts';
import { NODE_LOCAL_DNS_PIN } from './pins.ts';

const topologyFile = join(CLUSTERS_DIR, 'three-node.yaml');

/** The heredoc that follows the first command line matching `re`. */
function stdinOf(plan: string, re: RegExp): string {
  const lines = plan.split('\n');
  const i = lines.findIndex((l) => l.startsWith('$ ') && re.test(l));
  expect(i, `no command matching ${re}`).toBeGreaterThanOrEqual(0);
  const end = lines.indexOf('EOF', i);
  return lines.slice(i + 1, end).join('\n');
}

describe('kind dry-run plan for flannel-arp', async () => {
  const plan = await kindPlan({ topologyFile, suiteName: 'flannel-arp', clients: ['musl', 'glibc'] });
  it('runs the steps in order: create, flannel, CoreDNS, image load, pods, faults, teardown', () => {
    const lines = plan.split('\n');
    const steps = [
      /^## 2\. fetch and verify the pinned kube-flannel v0\.28\.9 manifest$/,
      /^# fetch https:\/\/raw\.githubusercontent\.com\/flannel-io\/flannel\/v0\.28\.9\/Documentation\/kube-flannel\.yml$/,
      /^\$ docker build -f images\/probe\/Dockerfile\.alpine /,
      /^\$ kind create cluster --name vxchaos-dry-run --config - /,
      /^\$ docker cp .*bridge vxchaos-dry-run-worker2:\/opt\/cni\/bin\/bridge$/,
      /^## \d+\. apply flannel v0\.28\.9$/,
      /rollout status daemonset\/kube-flannel-ds/,
      /scale deployment\/coredns --replicas=3$/,
      /^\$ kind load docker-image vxchaos\/probe:musl-\w+ vxchaos\/probe:glibc-\w+ --name vxchaos-dry-run$/,
      /^## \d+\. create client pods \(musl, glibc\)$/,
      /wait --for=condition=Ready pod\/vxchaos-client-musl pod\/vxchaos-client-glibc/,
      /exec -n default vxchaos-client-musl -c probe -- \/usr\/local\/bin\/vxprobe -c 1 web\.default\.svc\.cluster\.local\.$/,
      /^## \d+\. cell 3\/8: client=musl fault=mac-churn mode=stale-peers \(node=node-3\) mitigation=none expect=reproduces$/,
      /^# fault mac-churn \(stale-peers\): apply/,
      /exec -n default vxchaos-client-musl -c probe -- \/usr\/local\/bin\/vxprobe -t 16 -d 12 web\.default\.svc\.cluster\.local\.$/,
      /^## \d+\. teardown$/,
      /^\$ kind delete cluster --name vxchaos-dry-run /,
    ];
    // Each step is searched for after the previous one: found means found in this order.
    let from = 0;
    for (const re of steps) {
      const i = lines.findIndex((l, n) => n >= from && re.test(l));
      expect(i, `${re} after line ${from}`).toBeGreaterThanOrEqual(0);
      from = i + 1;
    }
  });

  it('has a cell per client and suite cell, the live-peers one too', () => {
    expect(plan.match(/^## \d+\. cell \d+\/8: /gm)).toHaveLength(8);
    expect(plan).toMatch(/cell 8\/8: client=glibc fault=mac-churn mode=live-peers/);
  });

  it('shows the generated kind config, which parses and pins the node image by digest', () => {
    const config = parse(stdinOf(plan, /^\$ kind create cluster/)) as Record<string, any>;
    expect(config.networking).toMatchObject({ disableDefaultCNI: true, kubeProxyMode: 'iptables', podSubnet: '10.244.0.0/16' });
    expect(config.nodes).toHaveLength(3);
    expect(config.nodes[0].image).toBe(nodeImage().image);
  });

  it('shows the URL and sha256 it fetches kube-flannel from and what it changes in it, not the manifest', () => {
    const pin = flannelPin('v0.28.9');
    const fetchStep = plan.slice(plan.indexOf('## 2. fetch and verify'), plan.indexOf('## 3. '));
    expect(fetchStep).toContain(`# fetch ${pin.url}\n`);
    expect(fetchStep).toContain(`# verify sha256 ${pin.sha256} (a mismatch stops the run and applies nothing`);
    expect(fetchStep).toContain('# images it references (by tag): ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3 ghcr.io/flannel-io/flannel:v0.28.9');
    expect(fetchStep).toContain('# render: ConfigMap kube-flannel-cfg, net-conf.json: Network=10.244.0.0/16, Backend.Type=vxlan, Backend.VNI=1, Backend.Port=8472; everything else as upstream ships it');
    expect(stdinOf(plan, /apply -f -/)).toBe('<kube-flannel.yml v0.28.9: the verified download with net-conf.json rendered as noted>');
    expect(plan).toMatch(new RegExp(`^# flannel v0\\.28\\.9: ${pin.url.replaceAll('.', '\\.')} \\(sha256 ${pin.sha256}\\)`, 'm'));
    expect(plan).toContain(`# NodeLocal DNSCache (nodelocaldns mitigation): ${NODE_LOCAL_DNS_PIN.url} (sha256 ${NODE_LOCAL_DNS_PIN.sha256})`);
    // nothing of an upstream manifest is printed
    expect(plan).not.toMatch(/kube-flannel-ds\n|^kind: DaemonSet$/m);
  });

  it('shows the manifests it generates itself, which parse', () => {
    expect(plan).toMatch(/^kind: Service$/m);
    expect(plan).toMatch(/^ {2}name: vxchaos-client-glibc$/m);
  });

  it('reads back placeholders, never invented values, and paths relative to the checkout', () => {
    expect(plan).toMatch(/^# nothing below was executed/m);
    expect(plan).not.toContain(CLUSTERS_DIR);
    expect(plan).toMatch(/kubeconfig reports\/dry-run\/kind\/kubeconfig/);
  });

  it('honours the requested versions and clients', async () => {
    const p = await kindPlan({ topologyFile, suiteName: 'flannel-arp', clients: ['glibc'], k8sVersion: '1.34', flannelVersion: 'v0.24.0' });
    expect(p).toContain(nodeImage('1.34').image);
    expect(p).toMatch(/^## \d+\. apply flannel v0\.24\.0$/m);
    expect(p).toContain(`# fetch ${flannelPin('v0.24.0').url}\n`);
    expect(p).toContain(`# verify sha256 ${flannelPin('v0.24.0').sha256} `);
    expect(p).toContain('docker.io/flannel/flannel:v0.24.0');
    expect(p).not.toContain('vxchaos-client-musl');
    expect(p.match(/^## \d+\. cell \d+\/4: client=glibc/gm)).toHaveLength(4);
  });

  it('shows where NodeLocal DNSCache comes from and its substitutions when a cell installs it', async () => {
    const p = await kindPlanWith(
      { topologyFile, suiteName: 'flannel-arp', clients: ['musl'] },
      {
        runCell: async ({ cluster, cell }) => {
          if (cell.fault !== 'none') return;
          await cluster.installNodeLocalDns();
          await cluster.removeNodeLocalDns();
        },
      },
    );
    expect(p).toContain(`# fetch ${NODE_LOCAL_DNS_PIN.url}\n`);
    expect(p).toContain(`# verify sha256 ${NODE_LOCAL_DNS_PIN.sha256} `);
    expect(p).toContain(
      '# render: __PILLAR__LOCAL__DNS__=169.254.20.10, __PILLAR__DNS__DOMAIN__=cluster.local, __PILLAR__DNS__SERVER__=10.96.0.10; ' +
        'node-cache fills __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ itself at start',
    );
    expect(stdinOf(p, /apply -f -/)).toMatch(/^<kube-flannel\.yml v0\.28\.9: /);
    expect(p).toMatch(/ apply -f - <<'EOF'\n<nodelocaldns\.yaml \(NodeLocal DNSCache addon\): the verified download with its placeholders filled as noted>\nEOF$/m);
    expect(p).toMatch(/ delete --ignore-not-found --wait=true -f - <<'EOF'\n<nodelocaldns\.yaml/);
  });

  it('lets a wired engine put the real fault commands into the plan', async () => {
    const p = await kindPlanWith(
      { topologyFile, suiteName: 'flannel-arp', clients: ['musl'] },
      {
        runCell: async ({ cluster, cell }) => {
          if (cell.fault !== 'mac-churn') return;
          await cluster.flannel.freeze(['node-1', 'node-2']);
          await cluster.node('node-3').exec(['ip', 'link', 'del', 'flannel.1']);
          await cluster.flannel.restart('node-3');
          await cluster.flannel.thaw(['node-1', 'node-2']);
          const host = cluster.nodeProbe('node-1');
          await host.exec([...host.probe, '-C', '-p', '80', '-c', '1', '10.96.100.10']);
        },
      },
    );
    const cell = p.slice(p.indexOf('cell 2/4'), p.indexOf('cell 3/4'));
    const lines = cell.split('\n').filter((l) => l.startsWith('$ '));
    expect(lines[0]).toBe('$ docker exec vxchaos-dry-run-control-plane pkill -STOP -x flanneld');
    expect(lines[2]).toBe('$ docker exec vxchaos-dry-run-worker2 ip link del flannel.1');
    expect(lines.some((l) => /-n kube-flannel delete pod kube-flannel-ds-node-3 --wait=true/.test(l))).toBe(true);
    expect(lines.at(-2)).toBe('$ docker exec vxchaos-dry-run-worker pkill -CONT -x flanneld');
    // node → Service probes run vxprobe as a host process on the node (copied there at bring-up)
    expect(lines.at(-1)).toBe('$ docker exec vxchaos-dry-run-control-plane /usr/local/bin/vxprobe -C -p 80 -c 1 10.96.100.10');
  });
});
