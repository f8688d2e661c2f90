import { parseAllDocuments, Scalar, type Document } from 'yaml';
import type { Topology } from '../../config/topology.ts';
import { ConfigError, VxError } from '../../errors.ts';
import type { FlannelControl, VtepLease } from '../provider.ts';
import { isReady, kubectl, kubectlJson, waitFor, type KindContext, type KList, type KNode, type KPod } from './context.ts';
import { NODE_LABEL } from './config.ts';
import { FLANNEL_MANIFEST_PINS, type ManifestPin } from './pins.ts';

export interface FlannelVersion {
  version: string;
  /** Why this version is in the matrix. */
  note: string;
}

/** Each has a pinned manifest (URL + sha256) in FLANNEL_MANIFEST_PINS (pins.ts), fetched at run time. */
export const FLANNEL_VERSIONS: readonly FlannelVersion[] = [
  { version: 'v0.28.9', note: 'current release' },
  { version: 'v0.26.7', note: 'last v0.26 release' },
  // flannel#1829 (first tagged in v0.24.1) reads the VtepMAC back from the node annotation on restart.
  { version: 'v0.24.0', note: 'last release before the persistent VtepMAC (flannel#1829)' },
];

export const DEFAULT_FLANNEL_VERSION = 'v0.28.9';

export const VXLAN_DEVICE = 'flannel.1';
export const ANNOTATION_PREFIX = 'flannel.alpha.coreos.com/';
export const BACKEND_DATA = `${ANNOTATION_PREFIX}backend-data`;
export const PUBLIC_IP = `${ANNOTATION_PREFIX}public-ip`;

/** The pinned kube-flannel manifest of a version in FLANNEL_VERSIONS ("0.24.0" or "v0.24.0"). */
export function flannelPin(version: string = DEFAULT_FLANNEL_VERSION): ManifestPin {
  const v = version.startsWith('v') ? version : `v${version}`;
  const pin = FLANNEL_VERSIONS.some((f) => f.version === v) ? FLANNEL_MANIFEST_PINS[v] : undefined;
  if (!pin) {
    throw new ConfigError('--flannel-version', [
      `no pinned kube-flannel manifest for "${version}"; pinned: ${FLANNEL_VERSIONS.map((f) => f.version).join(', ')} (harness/providers/kind/pins.ts)`,
    ]);
  }
  return pin;
}

function isFlannelConfig(doc: Document): boolean {
  return doc.get('kind') === 'ConfigMap' && doc.getIn(['metadata', 'name']) === 'kube-flannel-cfg';
}

/** What renderFlannelManifest sets in net-conf.json; every other key stays as upstream shipped it. */
export function flannelNetConf(topology: Topology): { Network: string; Backend: { Type: 'vxlan'; VNI: number; Port: number } } {
  return { Network: topology.podCIDR, Backend: { Type: 'vxlan', VNI: topology.vxlan.vni, Port: topology.vxlan.port } };
}

/**
 * A kube-flannel manifest (the verified upstream text) with net-conf.json set from the topology (Network,
 * VXLAN VNI and port); everything else stays as upstream shipped it. Pure: text in, text out, returned as
 * one multi-document YAML stream for `kubectl apply -f -`.
 */
export function renderFlannelManifest(topology: Topology, text: string): string {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new VxError('E_KIND_MANIFEST', 'kube-flannel manifest is empty');
  const set = flannelNetConf(topology);
  let patched = 0;
  for (const doc of docs) {
    if (doc.errors.length) throw new VxError('E_KIND_MANIFEST', `kube-flannel manifest: ${doc.errors[0]?.message}`);
    if (!isFlannelConfig(doc)) continue;
    const netConf = JSON.parse(String(doc.getIn(['data', 'net-conf.json']))) as { Backend?: Record<string, unknown> } & Record<string, unknown>;
    const rendered = { ...netConf, Network: set.Network, Backend: { ...netConf.Backend, ...set.Backend } };
    const value = new Scalar(`${JSON.stringify(rendered, null, 2)}\n`);
    value.type = Scalar.BLOCK_LITERAL;
    doc.setIn(['data', 'net-conf.json'], value);
    patched++;
  }
  if (patched !== 1) throw new VxError('E_KIND_MANIFEST', `kube-flannel manifest: expected one ConfigMap kube-flannel-cfg, found ${patched}`);
  // A document that carries a comment before its marker prints its own `---`.
  return docs
    .filter((d) => d.contents !== null)
    .map((d) => String(d))
    .map((d) => (/^(#.*\n|\s*\n)*---\n/.test(d) ? d : `---\n${d}`))
    .join('');
}

/** Applies a rendered kube-flannel manifest (KindManifests.flannel) and waits for flannel and the nodes. */
export async function applyFlannel(ctx: KindContext, manifest: string): Promise<void> {
  await ctx.shell(kubectl(ctx, 'apply', '-f', '-'), { input: manifest, timeoutMs: 60_000 });
  await ctx.shell(kubectl(ctx, '-n', 'kube-flannel', 'rollout', 'status', 'daemonset/kube-flannel-ds', '--timeout=300s'), { timeoutMs: 310_000 });
  // Nodes turn Ready once a CNI config exists; pods can only start after that.
  await ctx.shell(kubectl(ctx, 'wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=300s'), { timeoutMs: 310_000 });
}

/** A node's lease as flanneld published it; undefined until flanneld has written both annotations. */
export function leaseOf(n: KNode): VtepLease | undefined {
  const a = n.metadata.annotations ?? {};
  const data = a[BACKEND_DATA];
  const publicIP = a[PUBLIC_IP];
  if (!data || !publicIP || !n.spec.podCIDR) return undefined;
  let vtepMAC: unknown;
  try {
    vtepMAC = (JSON.parse(data) as { VtepMAC?: unknown }).VtepMAC;
  } catch {
    return undefined;
  }
  if (typeof vtepMAC !== 'string') return undefined;
  return { node: n.metadata.labels?.[NODE_LABEL] ?? n.metadata.name, publicIP, subnet: n.spec.podCIDR, vtepMAC };
}

/**
 * FlannelControl on kind: leases are the node annotations of the real kube-flannel DaemonSet; a restart
 * is a new kube-flannel pod; freeze/thaw stop and continue flanneld in the node's PID namespace, so it
 * neither sees nor acts on lease changes while the kernel state it programmed stays as it was.
 */
export class KindFlannel implements FlannelControl {
  constructor(
    private readonly ctx: KindContext,
    /** Topology node name → node container name. */
    private readonly containers: ReadonlyMap<string, string>,
  ) {}

  private container(node: string): string {
    const c = this.containers.get(node);
    if (!c) throw new VxError('E_UNKNOWN_NODE', `unknown node "${node}" (nodes: ${[...this.containers.keys()].join(', ')})`);
    return c;
  }

  async leases(): Promise<VtepLease[]> {
    const nodes = await kubectlJson<KList<KNode>>(this.ctx, ['get', 'nodes']);
    return nodes.items.map(leaseOf).filter((l): l is VtepLease => l !== undefined);
  }

  /** Waits until every listed node has published a lease. */
  async waitForLeases(nodes: readonly string[]): Promise<VtepLease[]> {
    return waitFor(`flannel leases (${BACKEND_DATA}) on ${nodes.join(', ')}`, async () => {
      const leases = await this.leases();
      const missing = nodes.filter((n) => !leases.some((l) => l.node === n));
      if (missing.length) throw new Error(`no lease yet for ${missing.join(', ')}`);
      return leases;
    });
  }

  private async flannelPod(container: string): Promise<KPod | undefined> {
    const pods = await kubectlJson<KList<KPod>>(this.ctx, ['-n', 'kube-flannel', 'get', 'pods', '-l', 'app=flannel', '--field-selector', `spec.nodeName=${container}`]);
    return pods.items.find((p) => !p.metadata.deletionTimestamp);
  }

  async restart(node: string): Promise<void> {
    const container = this.container(node);
    const old = await this.flannelPod(container);
    if (!old) throw new VxError('E_KIND_FLANNEL', `no kube-flannel pod on ${node} (${container})`);
    await this.ctx.shell(kubectl(this.ctx, '-n', 'kube-flannel', 'delete', 'pod', old.metadata.name, '--wait=true', '--timeout=90s'), { timeoutMs: 100_000 });
    await waitFor(`a new kube-flannel pod on ${node} to be Ready`, async () => {
      const pod = await this.flannelPod(container);
      if (!pod || pod.metadata.uid === old.metadata.uid) throw new Error('not recreated yet');
      if (!isReady(pod)) throw new Error(`${pod.metadata.name} is ${pod.status.phase ?? 'pending'}`);
    });
    // v0.24.0 has no readiness probe: Ready says nothing about the lease, which may still carry the old
    // VtepMAC. The restart is over once the lease names the MAC flannel.1 has on that node now.
    await waitFor(`the ${node} lease (${BACKEND_DATA}) to carry flannel.1's MAC`, async () => {
      const lease = (await this.leases()).find((l) => l.node === node);
      if (!lease) throw new Error(`no lease for ${node}`);
      const mac = await this.vtepMac(container);
      if (!mac) throw new Error(`flannel.1 does not exist on ${node} yet`);
      if (lease.vtepMAC.toLowerCase() !== mac) throw new Error(`lease VtepMAC ${lease.vtepMAC}, flannel.1 ${mac}`);
    });
  }

  /** flannel.1's MAC on a node as the kernel has it now; undefined while the device does not exist. */
  private async vtepMac(container: string): Promise<string | undefined> {
    const r = await this.ctx.shell(['docker', 'exec', container, 'cat', `/sys/class/net/${VXLAN_DEVICE}/address`], { nothrow: true });
    const mac = r.stdout.trim().toLowerCase();
    return r.exitCode === 0 && mac ? mac : undefined;
  }

  /** SIGSTOP, not a kill: kubelet must not notice, and the neighbour/FDB entries must stay as they were. */
  async freeze(nodes: readonly string[]): Promise<void> {
    for (const n of nodes) await this.ctx.shell(['docker', 'exec', this.container(n), 'pkill', '-STOP', '-x', 'flanneld']);
  }

  async thaw(nodes: readonly string[]): Promise<void> {
    for (const n of nodes) await this.ctx.shell(['docker', 'exec', this.container(n), 'pkill', '-CONT', '-x', 'flanneld']);
  }
}
