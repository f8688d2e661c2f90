import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import type { ClusterNode, NodeLocalDnsControl } from '../provider.ts';
import { NODE_VXPROBE } from './cni.ts';
import { isReady, kubectlJson, waitFor, type KindContext, type KList, type KPod } from './context.ts';
import { installNodeLocalDns, removeNodeLocalDns } from './dns.ts';
import type { KindManifests } from './fetch-pinned.ts';
import { NODE_LOCAL_DNS_IP } from './manifests.ts';

/** The addon DaemonSet's pod label. */
export const NODE_LOCAL_DNS_SELECTOR = 'k8s-app=node-local-dns';
/** The interface node-cache puts its addresses on (its -interfacename default) and removes on SIGTERM. */
export const NODE_LOCAL_DNS_LINK = 'nodelocaldns';
/** The comment node-cache gives its NOTRACK / ACCEPT rules. */
const RULE_COMMENT = 'NodeLocal DNS Cache:';

/** A node of the kind cluster as this control needs it: the seam plus its container (= Kubernetes node) name. */
export type KindNodeRef = ClusterNode & { readonly container: string };

/**
 * One lookup from the node's own network through its glibc resolver (the vxprobe copied onto every node),
 * with a resolv.conf that names only `address`. The kind node image has no dig; the resolv.conf is a
 * tmpfs file bind-mounted over /etc/resolv.conf in a private mount namespace (unshare's default
 * propagation), so the node's own resolv.conf is never touched and nothing is left behind.
 */
export function nodeCacheLookupArgv(address: string, fqdn: string): string[] {
  const script =
    'mount -t tmpfs vxchaos-nodelocaldns /tmp && printf "nameserver %s\\n" "$1" > /tmp/resolv.conf && ' +
    'mount --bind /tmp/resolv.conf /etc/resolv.conf && shift && exec "$@"';
  return ['unshare', '--mount', 'sh', '-c', script, 'sh', address, NODE_VXPROBE, '-c', '1', fqdn];
}

/** vxprobe's result column of its first lookup line (`L … OK …`), as waitForServiceDns reads it. */
export function lookupResult(stdout: string): string | undefined {
  return stdout.split('\n').find((l) => l.startsWith('L '))?.split(' ')[4];
}

export interface KindNodeLocalDnsOptions {
  /** Bound of each wait (pods Ready, caches answering, pods and rules gone); default 180 s. */
  timeoutMs?: number;
  /** First pause between checks; default 500 ms. */
  intervalMs?: number;
  /** The run's upstream DNS address, for node-cache's external names (known after bring-up, hence a getter). */
  upstream?: () => string | undefined;
}

/**
 * NodeLocal DNSCache on kind: the real node-local-dns DaemonSet, from its pinned and sha256-verified addon
 * manifest (installNodeLocalDns). Enabled once a Ready node-cache pod runs on every node and each node's
 * cache answers a cluster name at the link-local address (its upstream, the cluster DNS, over TCP);
 * disabled once the pods are gone and node-cache's teardown removed its interface and rules on every node.
 */
export class KindNodeLocalDns implements NodeLocalDnsControl {
  private enabling?: Promise<{ address: string }>;
  /** Something was applied and not yet seen removed. */
  private applied = false;

  constructor(
    private readonly ctx: KindContext,
    private readonly topology: Topology,
    private readonly manifests: KindManifests,
    /** The cluster's nodes; known only after discovery, hence a getter. */
    private readonly nodes: () => readonly KindNodeRef[],
    private readonly opts: KindNodeLocalDnsOptions = {},
  ) {}

  enable(): Promise<{ address: string }> {
    this.enabling ??= this.install().catch(async (e: unknown) => {
      this.enabling = undefined;
      await this.remove().catch((cleanup: unknown) => {
        const why = (x: unknown) => (x instanceof Error ? x.message : String(x));
        throw new VxError('E_KIND_NODELOCALDNS', `${why(e)}\n(removing node-local-dns after that failure also failed: ${why(cleanup)})`);
      });
      throw e;
    });
    return this.enabling;
  }

  async disable(): Promise<void> {
    await this.enabling?.catch(() => undefined);
    this.enabling = undefined;
    // A failed enable has removed the DaemonSet already, unless that removal failed too: then try again.
    if (this.applied) await this.remove();
  }

  private wait<T>(what: string, check: () => Promise<T>, timeoutMs?: number): Promise<T> {
    return waitFor(what, check, { timeoutMs: timeoutMs ?? this.opts.timeoutMs ?? 180_000, minIntervalMs: this.opts.intervalMs ?? 500 });
  }

  private pods(): Promise<KList<KPod>> {
    return kubectlJson<KList<KPod>>(this.ctx, ['-n', 'kube-system', 'get', 'pods', '-l', NODE_LOCAL_DNS_SELECTOR]);
  }

  private async install(): Promise<{ address: string }> {
    const nodes = this.nodes();
    if (nodes.length === 0) throw new VxError('E_KIND_NODELOCALDNS', 'node-local-dns: the cluster has no nodes yet');
    this.applied = true;
    await installNodeLocalDns(this.ctx, this.topology, this.manifests, this.opts.upstream?.());
    await this.wait(`a Ready node-local-dns pod on every node (${nodes.map((n) => n.container).join(', ')})`, async () => {
      const live = (await this.pods()).items.filter((p) => !p.metadata.deletionTimestamp && isReady(p));
      const missing = nodes.filter((n) => !live.some((p) => p.spec.nodeName === n.container));
      if (missing.length) throw new Error(`none Ready on ${missing.map((n) => `${n.name} (${n.container})`).join(', ')}`);
    });
    const fqdn = `kube-dns.kube-system.svc.${this.topology.dns.domain}.`;
    await Promise.all(
      nodes.map((node) =>
        this.wait(`node-local-dns on ${node.name} to answer ${fqdn} at ${NODE_LOCAL_DNS_IP}`, async () => {
          const r = await node.exec(nodeCacheLookupArgv(NODE_LOCAL_DNS_IP, fqdn), { nothrow: true, timeoutMs: 20_000 });
          const result = lookupResult(r.stdout);
          if (result !== 'OK') throw new Error(`lookup result ${result ?? 'missing'} (exit ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`);
        }),
      ),
    );
    return { address: NODE_LOCAL_DNS_IP };
  }

  private async remove(): Promise<void> {
    await removeNodeLocalDns(this.ctx, this.topology, this.manifests, this.opts.upstream?.());
    // The DaemonSet is gone; its pods follow, each running node-cache's teardown on SIGTERM.
    await this.wait('the node-local-dns pods to be gone', async () => {
      const left = (await this.pods()).items;
      if (left.length) throw new Error(`still there: ${left.map((p) => `${p.metadata.name} on ${p.spec.nodeName ?? '?'}`).join(', ')}`);
    });
    // A pod object is gone only once its container has exited, so what is left now stays: a short bound.
    await Promise.all(
      this.nodes().map((node) =>
        this.wait(`node-cache's interface and rules to be gone from ${node.name}`, async () => {
          const links = (await node.exec(['ip', '-o', 'link', 'show'])).stdout.split('\n');
          if (links.some((l) => l.split(': ')[1]?.split('@')[0] === NODE_LOCAL_DNS_LINK)) throw new Error(`interface ${NODE_LOCAL_DNS_LINK} is still there`);
          const raw = (await node.exec(['iptables-save', '-t', 'raw'])).stdout;
          if (raw.includes(RULE_COMMENT)) throw new Error(`raw table still has "${RULE_COMMENT}" rules`);
        }, Math.min(this.opts.timeoutMs ?? 30_000, 30_000)),
      ),
    );
    this.applied = false;
  }
}
