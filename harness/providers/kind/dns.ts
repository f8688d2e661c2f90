import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import type { ClientPod } from '../provider.ts';
import { isReady, kubectl, kubectlJson, waitFor, type KindContext, type KList, type KPod } from './context.ts';
import { NODE_LABEL } from './config.ts';
import type { KindManifests } from './fetch-pinned.ts';
import { serverPodManifest, serviceManifest, toYamlStream } from './manifests.ts';

/**
 * CoreDNS as the topology lists it: one replica per listed node, never two on one node. Then a lost
 * node takes exactly its share of the lookups with it, the ratio suites such as flannel-arp expect.
 */
export function corednsPatch(topology: Topology): Record<string, unknown> {
  return {
    spec: {
      replicas: topology.dns.replicas.length,
      // Surge pods could not be placed (every allowed node already has a replica): replace in place.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      template: {
        spec: {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: NODE_LABEL, operator: 'In', values: [...topology.dns.replicas] }] }],
              },
            },
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                { labelSelector: { matchLabels: { 'k8s-app': 'kube-dns' } }, topologyKey: 'kubernetes.io/hostname' },
              ],
            },
          },
        },
      },
    },
  };
}

export async function scaleAndSpreadCoreDns(ctx: KindContext, topology: Topology, nodeOf: (k8sNode: string) => string | undefined): Promise<KPod[]> {
  await ctx.shell(kubectl(ctx, '-n', 'kube-system', 'scale', 'deployment/coredns', `--replicas=${topology.dns.replicas.length}`));
  await ctx.shell(kubectl(ctx, '-n', 'kube-system', 'patch', 'deployment/coredns', '--type=merge', '-p', JSON.stringify(corednsPatch(topology))));
  return settledCoreDns(ctx, topology, nodeOf);
}

/**
 * The CoreDNS replicas once a rollout has settled: the rollout done, no pod terminating, one Ready pod per
 * listed node. A rollout replaces every pod, so whoever keeps replica addresses must read them again here.
 */
export async function settledCoreDns(ctx: KindContext, topology: Topology, nodeOf: (k8sNode: string) => string | undefined): Promise<KPod[]> {
  await ctx.shell(kubectl(ctx, '-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=300s'), { timeoutMs: 310_000 });
  const want = [...topology.dns.replicas].sort();
  return waitFor(`CoreDNS replicas on ${want.join(', ')}`, async () => {
    const pods = await kubectlJson<KList<KPod>>(ctx, ['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-dns']);
    const leaving = pods.items.filter((p) => p.metadata.deletionTimestamp);
    if (leaving.length) throw new Error(`still terminating: ${leaving.map((p) => p.metadata.name).join(', ')}`);
    const on = pods.items.map((p) => nodeOf(p.spec.nodeName ?? '') ?? `?${p.spec.nodeName}`).sort();
    if (on.join(',') !== want.join(',')) throw new Error(`replicas on ${on.join(', ') || 'no node'}`);
    const notReady = pods.items.filter((p) => !isReady(p) || !p.status.podIP);
    if (notReady.length) throw new Error(`not ready: ${notReady.map((p) => p.metadata.name).join(', ')}`);
    return pods.items;
  });
}

/** The topology's Services at their ClusterIPs, with one TCP endpoint pod per listed node. */
export async function ensureServices(ctx: KindContext, topology: Topology, runId: string, serverImage: string): Promise<void> {
  if (topology.services.length === 0) return;
  const objects = topology.services.flatMap((s) => [serviceManifest(s, runId), ...s.endpoints.map((n) => serverPodManifest(s, n, { runId, image: serverImage }))]);
  await ctx.shell(kubectl(ctx, 'apply', '-f', '-'), { input: toYamlStream(objects), timeoutMs: 60_000 });
  for (const ns of new Set(topology.services.filter((s) => s.endpoints.length).map((s) => s.namespace))) {
    await ctx.shell(kubectl(ctx, '-n', ns, 'wait', '--for=condition=Ready', 'pod', '-l', 'vxchaos.io/role=server', '--timeout=180s'), { timeoutMs: 190_000 });
  }
}

/** The FQDN (trailing dot: no search-list walk) of the topology's first Service. */
export function serviceFqdn(topology: Topology): string | undefined {
  const s = topology.services[0];
  return s ? `${s.name}.${s.namespace}.svc.${topology.dns.domain}.` : undefined;
}

/**
 * The records exist and are served: one lookup through the client's own libc resolver. Retried, because
 * CoreDNS learns a new Service within its informer resync, not instantly.
 */
export async function waitForServiceDns(topology: Topology, client: ClientPod): Promise<void> {
  const fqdn = serviceFqdn(topology);
  if (!fqdn) return;
  await waitFor(`${fqdn} to resolve from ${client.name} (${client.libc})`, async () => {
    const r = await client.exec([...client.probe, '-c', '1', fqdn], { nothrow: true, timeoutMs: 20_000 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('L '));
    const result = line?.split(' ')[4];
    if (result !== 'OK') throw new VxError('E_KIND_DNS', `lookup result ${result ?? 'missing'} (exit ${r.exitCode})`);
  }, { timeoutMs: 120_000 });
}

/** The placeholder node-cache fills from the node's resolv.conf (the runner's resolver on kind) unless it is filled. */
export const UPSTREAM_SERVERS_PILLAR = '__PILLAR__UPSTREAM__SERVERS__';

/** External names from node-cache go to the run's upstream DNS, as CoreDNS's do, not to the node's resolver. */
export function withUpstream(manifest: string, upstream: string | undefined): string {
  return upstream ? manifest.replaceAll(UPSTREAM_SERVERS_PILLAR, upstream) : manifest;
}

/** NodeLocal DNSCache as a DaemonSet, for the `nodelocaldns` mitigation on kind (fetched from its pin). */
export async function installNodeLocalDns(ctx: KindContext, topology: Topology, manifests: KindManifests, upstream?: string): Promise<void> {
  const manifest = withUpstream(await manifests.nodeLocalDns(topology), upstream);
  await ctx.shell(kubectl(ctx, 'apply', '-f', '-'), { input: manifest, timeoutMs: 60_000 });
  await ctx.shell(kubectl(ctx, '-n', 'kube-system', 'rollout', 'status', 'daemonset/node-local-dns', '--timeout=180s'), { timeoutMs: 190_000 });
}

/** node-cache removes its link-local address and NOTRACK rules when it gets SIGTERM. */
export async function removeNodeLocalDns(ctx: KindContext, topology: Topology, manifests: KindManifests, upstream?: string): Promise<void> {
  const manifest = withUpstream(await manifests.nodeLocalDns(topology), upstream);
  await ctx.shell(kubectl(ctx, 'delete', '--ignore-not-found', '--wait=true', '-f', '-'), { input: manifest, timeoutMs: 120_000 });
}
