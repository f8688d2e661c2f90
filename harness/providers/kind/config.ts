import { stringify } from 'yaml';
import { nth } from '../../config/cidr.ts';
import type { Topology } from '../../config/topology.ts';
import { ConfigError } from '../../errors.ts';

/** The kind CLI these node images were built for; kind supports an image only with its own release. */
export const KIND_VERSION = 'v0.32.0';

export interface NodeImage {
  /** Kubernetes version of the image, e.g. v1.36.1. */
  version: string;
  /** kind release whose notes publish this exact image. */
  kind: string;
  /** kindest/node:<version>@sha256:<digest>: kind builds images per release, the tag alone is not enough. */
  image: string;
}

/**
 * Node images published in the kind v0.32.0 release notes ("Images pre-built for this release"). The
 * v1.36.1 digest is also kind's default image at tag v0.32.0 (pkg/apis/config/defaults/image.go).
 * Add a version only with the digest its kind release notes publish.
 */
export const NODE_IMAGES: readonly NodeImage[] = [
  { version: 'v1.36.1', kind: 'v0.32.0', image: 'kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5' },
  { version: 'v1.35.5', kind: 'v0.32.0', image: 'kindest/node:v1.35.5@sha256:ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95' },
  { version: 'v1.34.8', kind: 'v0.32.0', image: 'kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256' },
  { version: 'v1.33.12', kind: 'v0.32.0', image: 'kindest/node:v1.33.12@sha256:3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4' },
];

export const DEFAULT_K8S_VERSION = 'v1.36.1';

/** "1.35", "v1.35" or "v1.35.5" → the image; a minor picks the newest patch in the table. */
export function nodeImage(version: string = DEFAULT_K8S_VERSION): NodeImage {
  const want = version.startsWith('v') ? version : `v${version}`;
  const exact = NODE_IMAGES.find((i) => i.version === want);
  if (exact) return exact;
  const minor = NODE_IMAGES.filter((i) => i.version.startsWith(`${want}.`));
  if (/^v\d+\.\d+$/.test(want) && minor[0]) return minor[0];
  throw new ConfigError('--k8s-version', [
    `no pinned kind node image for Kubernetes "${version}"; pinned: ${NODE_IMAGES.map((i) => i.version).join(', ')} ` +
      `(harness/providers/kind/config.ts, digests from kind ${KIND_VERSION} release notes)`,
  ]);
}

/** A kind cluster name from the run id: lower-case, short (node containers are <name>-control-plane). */
export function kindClusterName(runId: string): string {
  const id = runId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return `vxchaos-${id}`.slice(0, 40).replace(/-+$/, '');
}

/** kind names nodes <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, … in config order. */
export function kindNodeNames(cluster: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i === 0 ? `${cluster}-control-plane` : `${cluster}-worker${i === 1 ? '' : i}`));
}

/** Label that carries the topology's node name onto the Kubernetes node: manifests select nodes by it. */
export const NODE_LABEL = 'vxchaos.io/node';
export const RUN_LABEL = 'vxchaos.io/run';

export interface KindConfigOptions {
  runId: string;
  k8sVersion?: string;
}

/** kind.x-k8s.io/v1alpha4 Cluster: one control-plane + workers, no default CNI, iptables kube-proxy. */
export function kindConfig(topology: Topology, opts: KindConfigOptions): Record<string, unknown> {
  validateForKind(topology);
  const image = nodeImage(opts.k8sVersion).image;
  return {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: kindClusterName(opts.runId),
    networking: {
      ipFamily: 'ipv4',
      // flannel is the CNI under test; kindnetd must not be installed.
      disableDefaultCNI: true,
      podSubnet: topology.podCIDR,
      serviceSubnet: topology.serviceCIDR,
      // The seeds are about kube-proxy's iptables rules (KUBE-MARK-MASQ, KUBE-POSTROUTING).
      kubeProxyMode: 'iptables',
    },
    nodes: topology.nodes.map((n, i) => ({
      role: i === 0 ? 'control-plane' : 'worker',
      image,
      labels: { [NODE_LABEL]: n.name, [RUN_LABEL]: opts.runId },
    })),
  };
}

export function kindConfigYaml(topology: Topology, opts: KindConfigOptions): string {
  return stringify(kindConfig(topology, opts), { lineWidth: 0 });
}

/** What kind can build from a topology; every problem at once, as the topology loader does. */
export function validateForKind(topology: Topology): void {
  const problems: string[] = [];
  // kubeadm gives the cluster DNS Service the 10th address of the service subnet; kind cannot change it.
  const kubeadmDns = nth(topology.service, 10);
  if (topology.dns.clusterIP !== kubeadmDns) {
    problems.push(`dns.clusterIP: kind (kubeadm) puts cluster DNS at ${kubeadmDns}, the 10th address of ${topology.serviceCIDR}; the topology says ${topology.dns.clusterIP}`);
  }
  if (topology.dns.domain !== 'cluster.local') problems.push(`dns.domain: kind clusters use cluster.local; the topology says ${topology.dns.domain}`);
  topology.services.forEach((s, i) => {
    if (s.protocol !== 'TCP' && s.endpoints.length > 0) problems.push(`services[${i}]: the kind provider's endpoint pods serve TCP only (httpd)`);
  });
  if (problems.length) throw new ConfigError(`${topology.name} (kind provider)`, problems);
}

/**
 * Where kind differs from what the topology asks for without making the run meaningless: these go into
 * the plan header and the report's host facts, so nobody reads a kind cell as something it is not.
 */
export function kindNotes(topology: Topology): string[] {
  const notes: string[] = [];
  if (topology.kubeProxy === 'historic') {
    notes.push('kube-proxy: the topology asks for the historic (pre kubernetes#92035) rules; kind runs the node image\'s kube-proxy, which has the mark fix since v1.19');
  }
  if (topology.mtu !== 1450) notes.push(`mtu: flannel derives flannel.1's MTU from the node's eth0 (1500 - 50 = 1450 on kind), not ${topology.mtu}`);
  notes.push(`underlay: node addresses come from docker's "kind" network, not from underlayCIDR ${topology.underlayCIDR}`);
  return notes;
}
