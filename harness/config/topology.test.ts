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
});
