import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { CLUSTERS_DIR } from './suite.ts';
import { loadTopology } from './topology.ts';

const minimal = `name: t
nodes: [{name: a}, {name: b}]
dns: {replicas: [a, b]}
clients: {node: a}
`;

function problems(text: string): string[] {
  try {
    loadTopology('t.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('topology', () => {
  it('loads three-node.yaml with the flannel and kube-proxy facts the suites rely on', () => {
    const t = loadTopology(`${CLUSTERS_DIR}/three-node.yaml`);
    expect(t.nodes.map((n) => n.name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(t.dns.replicas).toEqual(['node-1', 'node-2', 'node-3']);
    expect(t.dns.clusterIP).toBe('10.96.0.10');
    expect(t.mtu).toBe(1450);
    expect(t.vxlan).toEqual({ vni: 1, port: 8472 });
    expect(t.nodeSpecs.map((n) => n.podSubnet.text)).toEqual(['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24']);
    expect(t.nodeSpecs.map((n) => n.ip)).toEqual(['172.18.0.2', '172.18.0.3', '172.18.0.4']);
  });

  it('applies defaults', () => {
    const t = loadTopology('t.yaml', minimal);
    expect(t.podCIDR).toBe('10.244.0.0/16');
    expect(t.serviceCIDR).toBe('10.96.0.0/12');
    expect(t.kubeProxy).toBe('historic');
    expect(t.vxlan.port).toBe(8472);
  });

  it('rejects unknown fields with their line and column', () => {
    const p = problems(`${minimal}mtuu: 1400\n`);
    expect(p).toEqual(['5:1: mtuu: unknown field "mtuu"']);
  });

  it('reports every problem at once', () => {
    const p = problems(`name: t
nodes: [{name: a}, {name: a}]
serviceCIDR: 10.96.0.0/12
dns: {replicas: [a, zz], clusterIP: 192.168.1.1}
clients: {node: q}
services:
  - {name: web, clusterIP: 10.96.0.10}
`);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringContaining('duplicate node "a"'),
        expect.stringContaining('dns.replicas[1]: unknown node "zz"'),
        expect.stringContaining('clients.node: unknown node "q"'),
        expect.stringContaining('dns.clusterIP: 192.168.1.1 is outside serviceCIDR'),
      ]),
    );
    expect(p.length).toBeGreaterThanOrEqual(4);
  });

  it('reports YAML syntax errors with positions', () => {
    const p = problems('name: [unclosed\n');
    expect(p[0]).toMatch(/^\d+:\d+: /);
  });

  it('checks types', () => {
    expect(problems(`${minimal}mtu: big\n`)[0]).toMatch(/mtu: .*number/i);
  });

  it('refuses a podCIDR that overlaps the serviceCIDR, at the podCIDR line', () => {
    expect(problems(`${minimal}serviceCIDR: 10.96.0.0/12\npodCIDR: 10.96.0.0/16\n`)).toEqual([
      '6:10: podCIDR: 10.96.0.0/16 overlaps serviceCIDR 10.96.0.0/12',
    ]);
  });

  it('refuses each overlapping pair among pod, service and underlay CIDRs', () => {
    const p = problems(`${minimal}podCIDR: 10.0.0.0/8\nserviceCIDR: 10.96.0.0/12\nunderlayCIDR: 10.200.0.0/16\n`);
    expect(p).toEqual([
      '5:10: podCIDR: 10.0.0.0/8 overlaps serviceCIDR 10.96.0.0/12',
      '5:10: podCIDR: 10.0.0.0/8 overlaps underlayCIDR 10.200.0.0/16',
    ]);
    expect(problems(`${minimal}underlayCIDR: 10.96.0.0/24\n`)).toEqual(['5:15: underlayCIDR: 10.96.0.0/24 overlaps serviceCIDR 10.96.0.0/12 (the default)']);
  });

  it('points at the written CIDR when the other one is the default', () => {
    expect(problems(`${minimal}serviceCIDR: 10.0.0.0/8\ndns: {replicas: [a, b], clusterIP: 10.0.0.10}\n`.replace('dns: {replicas: [a, b]}\n', ''))).toEqual([
      '4:14: serviceCIDR: 10.0.0.0/8 overlaps podCIDR 10.244.0.0/16 (the default)',
    ]);
  });

  it("refuses a CIDR that holds node-local-dns's link-local address", () => {
    expect(problems(`${minimal}underlayCIDR: 169.254.0.0/16\n`)).toEqual([
      "5:15: underlayCIDR: 169.254.0.0/16 contains node-local-dns's address 169.254.20.10",
    ]);
  });

  it('refuses a DNS ClusterIP outside the service CIDR, at its line', () => {
    expect(problems(minimal.replace('dns: {replicas: [a, b]}', 'dns:\n  replicas: [a, b]\n  clusterIP: 10.0.0.10'))).toEqual([
      '5:14: dns.clusterIP: 10.0.0.10 is outside serviceCIDR 10.96.0.0/12 (the default)',
    ]);
    expect(problems(`${minimal}serviceCIDR: 10.100.0.0/16\n`)).toEqual([
      '3:6: dns.clusterIP: 10.96.0.10 (the default) is outside serviceCIDR 10.100.0.0/16',
    ]);
  });

  it('gives every semantic problem its line, in file order', () => {
    const p = problems(`name: t
nodes: [{name: a}, {name: a}]
podCIDR: 10.96.0.0/16
dns: {replicas: [a, zz], clusterIP: 192.168.1.1}
clients: {node: q}
services:
  - {name: web, clusterIP: 10.96.0.10}
  - {name: api, clusterIP: 10.96.0.10, endpoints: [b]}
`);
    expect(p).toEqual([
      '2:27: nodes[1].name: duplicate node "a"',
      '3:10: podCIDR: 10.96.0.0/16 overlaps serviceCIDR 10.96.0.0/12 (the default)',
      '4:21: dns.replicas[1]: unknown node "zz" (nodes: a)',
      '4:37: dns.clusterIP: 192.168.1.1 is outside serviceCIDR 10.96.0.0/12 (the default)',
      '5:17: clients.node: unknown node "q" (nodes: a)',
      '8:28: services[1].clusterIP: 10.96.0.10 is already used by services[0].clusterIP',
      '8:52: services[1].endpoints[0]: unknown node "b" (nodes: a)',
    ]);
  });

  it('throws ConfigError (exit 2) naming file:line:col for a bad cluster file on disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxc-topology-'));
    try {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, `${minimal}podCIDR: 10.96.0.0/16\n`);
      let error: unknown;
      try {
        loadTopology(file);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      expect((error as ConfigError).code).toBe('E_CONFIG');
      expect((error as ConfigError).message).toContain(`${file}:5:10: podCIDR: 10.96.0.0/16 overlaps serviceCIDR 10.96.0.0/12 (the default)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
