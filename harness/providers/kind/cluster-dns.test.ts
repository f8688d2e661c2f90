import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../config/topology.ts';
import { recordingShell } from '../../exec/shell.ts';
import { corefileWithForward, deadUpstreamManifest, forwardOf, KindClusterDns, upstreamDnsArgs, upstreamDnsManifest } from './cluster-dns.ts';
import { withUpstream } from './dns.ts';

// The shape of kind's default Corefile (written here, not copied): a root zone with kubernetes + forward.
const corefile = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    reload
}
`;

describe('CoreDNS forward rewriting (kind clusterDns)', () => {
  it('replaces only the forward block, per policy', () => {
    const random = corefileWithForward(corefile, { servers: ['10.244.1.9', '172.18.0.1'], policy: 'random' });
    expect(random).toContain('forward . 10.244.1.9 172.18.0.1 {\n       policy random\n       max_fails 0');
    expect(random).toContain('kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure');
    expect(random).not.toContain('/etc/resolv.conf');
    expect(forwardOf(random)).toEqual({ servers: ['10.244.1.9', '172.18.0.1'], policy: 'random' });
    const checked = corefileWithForward(random, { servers: ['172.18.0.1'], policy: 'health-checked' });
    expect(forwardOf(checked)).toEqual({ servers: ['172.18.0.1'], policy: 'health-checked' });
    expect(checked.match(/forward \./g)).toHaveLength(1);
  });

  it('reads the default forward as health-checked to /etc/resolv.conf', () => {
    expect(forwardOf(corefile)).toEqual({ servers: ['/etc/resolv.conf'], policy: 'health-checked' });
    expect(() => corefileWithForward('.:53 {\n  errors\n}\n', { servers: ['1.2.3.4'], policy: 'random' })).toThrow(/no `forward \.` block/);
  });

  it('the dead upstream is the probe image reading port 53 without answering', () => {
    const m = deadUpstreamManifest('r1') as { spec: { containers: { command: string[] }[] } };
    expect(m.spec.containers[0]!.command).toEqual(['/usr/local/bin/vxprobe', '-B', '53']);
  });
});

describe('replicas after a rollout', () => {
  it('setUpstreams rolls CoreDNS out and reads the replicas again only after the rollout has settled', async () => {
    const shell = recordingShell((argv) => (argv.includes('configmap') && argv.includes('get') ? JSON.stringify({ data: { Corefile: corefile } }) : ''));
    const order: string[] = [];
    const dns = new KindClusterDns({ shell, cluster: 'c', kubeconfig: '/k', podExec: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, 'r', async () => {
      order.push(`settled after ${shell.calls.at(-1)?.slice(5).join(' ')}`);
    });
    await dns.setUpstreams(['10.0.0.1'], 'sequential');
    expect(order).toEqual(['settled after -n kube-system rollout restart deployment/coredns']);
  });
});

describe('the upstream DNS pod', () => {
  it('serves the topology\'s upstream names and NXDOMAIN for the rest, on its node\'s address only', () => {
    const t = loadTopology('t.yaml', 'name: t\nnodes: [{name: a}, {name: b}]\nclients: {node: b}\ndns: {replicas: [a], upstream: {x.example: 198.51.100.7, y.example: 198.51.100.8}}\n');
    const args = upstreamDnsArgs(t);
    expect(args).toEqual(expect.arrayContaining(['--host-record=x.example,198.51.100.7', '--host-record=y.example,198.51.100.8', '--no-resolv', '--bind-interfaces', '--listen-address=$(NODE_IP)']));
    expect(args.at(-1)).toBe('--address=/#/');
    const m = upstreamDnsManifest(t, 'r') as { spec: Record<string, any> };
    expect(m.spec.hostNetwork).toBe(true);
    expect(m.spec.nodeSelector).toEqual({ 'vxchaos.io/node': 'a' });
    expect(m.spec.containers[0].env).toEqual([{ name: 'NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }]);
  });

  it('is node-cache\'s upstream for external names too (the pillar filled before apply)', () => {
    expect(withUpstream('forward . __PILLAR__UPSTREAM__SERVERS__\n', '172.18.0.2')).toBe('forward . 172.18.0.2\n');
    expect(withUpstream('forward . __PILLAR__UPSTREAM__SERVERS__\n', undefined)).toBe('forward . __PILLAR__UPSTREAM__SERVERS__\n');
  });
});
