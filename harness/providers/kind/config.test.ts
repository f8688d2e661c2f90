import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { ConfigError } from '../../errors.ts';
import { DEFAULT_K8S_VERSION, KIND_VERSION, kindClusterName, kindConfigYaml, kindNodeNames, kindNotes, NODE_IMAGES, nodeImage, validateForKind } from './config.ts';

/**
 * The v1alpha4 field set, from kind v0.32.0 pkg/apis/config/v1alpha4/types.go (yaml tags). kind decodes
 * its config strictly: a field outside this set is an error at `kind create cluster`.
 */
const V1ALPHA4 = {
  Cluster: ['kind', 'apiVersion', 'name', 'nodes', 'networking', 'featureGates', 'runtimeConfig', 'kubeadmConfigPatches', 'kubeadmConfigPatchesJSON6902', 'containerdConfigPatches', 'containerdConfigPatchesJSON6902'],
  Node: ['role', 'image', 'labels', 'extraMounts', 'extraPortMappings', 'kubeadmConfigPatches', 'kubeadmConfigPatchesJSON6902'],
  Networking: ['ipFamily', 'apiServerPort', 'apiServerAddress', 'podSubnet', 'serviceSubnet', 'disableDefaultCNI', 'kubeProxyMode', 'dnsSearch'],
  NodeRole: ['control-plane', 'worker'],
  ClusterIPFamily: ['ipv4', 'ipv6', 'dual'],
  ProxyMode: ['iptables', 'ipvs', 'nftables'],
};

const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));

/** A two-node topology with the given dns block and extra lines. */
function twoNodes(dns: string, extra = ''): ReturnType<typeof loadTopology> {
  return loadTopology('inline.yaml', `name: t\nnodes: [{name: a}, {name: b}]\nclients: {node: a}\ndns: ${dns}\n${extra}`);
}

describe('kind config (v1alpha4)', () => {
  const yaml = kindConfigYaml(topology, { runId: '20260822-flannel-arp' });
  const config = parse(yaml) as Record<string, any>;

  it('uses only fields kind v1alpha4 knows, with allowed enum values', () => {
    expect(Object.keys(config).filter((k) => !V1ALPHA4.Cluster.includes(k))).toEqual([]);
    expect(Object.keys(config.networking).filter((k) => !V1ALPHA4.Networking.includes(k))).toEqual([]);
    for (const node of config.nodes) {
      expect(Object.keys(node).filter((k) => !V1ALPHA4.Node.includes(k))).toEqual([]);
      expect(V1ALPHA4.NodeRole).toContain(node.role);
    }
    expect(V1ALPHA4.ClusterIPFamily).toContain(config.networking.ipFamily);
    expect(V1ALPHA4.ProxyMode).toContain(config.networking.kubeProxyMode);
  });

  it('carries what the suites depend on', () => {
    expect(config).toMatchObject({
      kind: 'Cluster',
      apiVersion: 'kind.x-k8s.io/v1alpha4',
      networking: { disableDefaultCNI: true, podSubnet: '10.244.0.0/16', serviceSubnet: '10.96.0.0/12', kubeProxyMode: 'iptables' },
    });
  });

  it('has one control plane and a worker per further topology node, all on the pinned image by digest', () => {
    expect(config.nodes.map((n: { role: string }) => n.role)).toEqual(['control-plane', 'worker', 'worker']);
    expect(config.nodes.map((n: { labels: Record<string, string> }) => n.labels['vxchaos.io/node'])).toEqual(['node-1', 'node-2', 'node-3']);
    for (const n of config.nodes) expect(n.image).toBe(nodeImage(DEFAULT_K8S_VERSION).image);
    expect(config.nodes[0].image).toMatch(/^kindest\/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}$/);
  });

  it('follows the topology: node count and subnets', () => {
    const t = twoNodes('{replicas: [a, b], clusterIP: 10.112.0.10}', 'podCIDR: 10.200.0.0/16\nserviceCIDR: 10.112.0.0/12\n');
    const c = parse(kindConfigYaml(t, { runId: 'x', k8sVersion: '1.34' })) as Record<string, any>;
    expect(c.nodes).toHaveLength(2);
    expect(c.networking.podSubnet).toBe('10.200.0.0/16');
    expect(c.networking.serviceSubnet).toBe('10.112.0.0/12');
    expect(c.nodes[1].image).toContain('kindest/node:v1.34.8@sha256:');
  });
});

describe('node image table', () => {
  it('pins every image by tag and sha256 digest, for one kind release', () => {
    for (const i of NODE_IMAGES) {
      expect(i.image).toMatch(new RegExp(`^kindest/node:${i.version.replaceAll('.', '\\.')}@sha256:[0-9a-f]{64}$`));
      expect(i.kind).toBe(KIND_VERSION);
    }
    expect(new Set(NODE_IMAGES.map((i) => i.image.split('@')[1])).size).toBe(NODE_IMAGES.length);
  });

  it('resolves a minor, a version with or without v, and refuses what is not pinned', () => {
    expect(nodeImage('1.35').version).toBe('v1.35.5');
    expect(nodeImage('v1.33.12').version).toBe('v1.33.12');
    expect(nodeImage('1.36.1').version).toBe('v1.36.1');
    expect(() => nodeImage('v1.29.0')).toThrow(/no pinned kind node image.*v1\.36\.1/);
  });
});

describe('names', () => {
  it('makes short, valid kind cluster names from run ids', () => {
    const name = kindClusterName('2026-08-22T10:15:00Z_Flannel-ARP_abcdefabcdefabcdef');
    expect(name).toMatch(/^[a-z0-9.-]+$/);
    expect(name.length).toBeLessThanOrEqual(40);
    expect(name.startsWith('vxchaos-')).toBe(true);
    expect(name.endsWith('-')).toBe(false);
  });

  it('names nodes as kind does: control-plane, worker, worker2, …', () => {
    expect(kindNodeNames('c', 4)).toEqual(['c-control-plane', 'c-worker', 'c-worker2', 'c-worker3']);
  });
});

describe('what kind can build', () => {
  it('accepts the shared three-node topology', () => {
    expect(() => validateForKind(topology)).not.toThrow();
  });

  it('reports every problem at once', () => {
    const t = twoNodes('{replicas: [a, b], clusterIP: 10.96.0.53, domain: corp.local}', 'services: [{name: u, clusterIP: 10.96.1.1, protocol: UDP, endpoints: [b]}]\n');
    try {
      validateForKind(t);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems;
      expect(problems).toHaveLength(3);
      expect(problems[0]).toMatch(/10\.96\.0\.10/);
      expect(problems[1]).toMatch(/cluster\.local/);
      expect(problems[2]).toMatch(/TCP only/);
    }
  });

  it('says where kind differs from the topology', () => {
    const notes = kindNotes(topology);
    expect(notes.some((n) => n.includes('historic'))).toBe(true);
    expect(notes.some((n) => n.includes('underlay'))).toBe(true);
    // the topology's upstream names are served inside the run (an upstream DNS pod), not a difference
    expect(notes.some((n) => n.includes('upstream'))).toBe(false);
  });
});
