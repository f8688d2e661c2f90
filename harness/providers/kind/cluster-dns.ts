import { upstreamDnsmasqArgs } from '../../kube/upstream-dns.ts';
import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import type { ClusterDnsControl, ForwardPolicy, UpstreamConfig } from '../provider.ts';
import { NODE_LABEL, RUN_LABEL } from './config.ts';
import { isReady, kubectl, kubectlJson, waitFor, type KindContext, type KList, type KPod } from './context.ts';
import { POD_NAMESPACE, probeImage, toYamlStream } from './manifests.ts';

/** CoreDNS `forward` options per policy (see ForwardPolicy in provider.ts). */
export function forwardBlock(cfg: UpstreamConfig): string {
  const opts =
    cfg.policy === 'health-checked' ? ['max_concurrent 1000'] : [`policy ${cfg.policy}`, 'max_fails 0', 'max_concurrent 1000'];
  return `forward . ${cfg.servers.join(' ')} {\n${opts.map((o) => `       ${o}`).join('\n')}\n    }`;
}

const FORWARD = /forward \. [^\n{]*(\{[^}]*\})?/;

/** The Corefile with its root zone's `forward` replaced: everything else of the kind default is kept. */
export function corefileWithForward(corefile: string, cfg: UpstreamConfig): string {
  if (!FORWARD.test(corefile)) throw new VxError('E_KIND_COREDNS', 'the CoreDNS Corefile has no `forward .` block to rewrite');
  return corefile.replace(FORWARD, forwardBlock(cfg));
}

export function forwardOf(corefile: string): UpstreamConfig {
  const m = FORWARD.exec(corefile);
  if (!m) throw new VxError('E_KIND_COREDNS', 'the CoreDNS Corefile has no `forward .` block');
  const servers = m[0].split('\n')[0]!.replace(/^forward \. /, '').replace('{', '').trim().split(/\s+/);
  const policy = /policy (random|sequential)/.exec(m[0])?.[1] as ForwardPolicy | undefined;
  return { servers, policy: policy && /max_fails 0/.test(m[0]) ? policy : 'health-checked' };
}

const DEAD = 'vxchaos-dead-upstream';

/** A pod that reads DNS queries and never answers (vxprobe -B 53): silence, not an ICMP error. */
export function deadUpstreamManifest(runId: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: DEAD, namespace: POD_NAMESPACE, labels: { 'vxchaos.io/run': runId, 'vxchaos.io/role': 'dead-upstream' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'blackhole', image: probeImage('musl'), imagePullPolicy: 'Never', command: ['/usr/local/bin/vxprobe', '-B', '53'] }],
    },
  };
}

export const UPSTREAM_DNS = 'vxchaos-upstream-dns';

/**
 * dnsmasq as the "internet" upstream, exactly as the netns provider runs it in its fabric: authoritative for
 * the topology's dns.upstream names, NXDOMAIN for every other name (never the runner's resolver), listening on
 * its node's address only ($(NODE_IP) is expanded by the kubelet from the downward API).
 */
export function upstreamDnsArgs(topology: Topology): string[] {
  // $(NODE_IP) is expanded by the kubelet; dnsmasq logs to stdout so `kubectl logs` shows it.
  return upstreamDnsmasqArgs(topology, '$(NODE_IP)', ['--log-facility=-']);
}

/**
 * The upstream DNS pod: on the host network of the first node, so CoreDNS reaches it over the underlay (the
 * docker network), as netns replicas reach the fabric's dnsmasq, and a broken overlay does not cut it off.
 */
export function upstreamDnsManifest(topology: Topology, runId: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: UPSTREAM_DNS, namespace: POD_NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'vxchaos', [RUN_LABEL]: runId, 'vxchaos.io/role': 'upstream-dns' } },
    spec: {
      hostNetwork: true,
      dnsPolicy: 'Default',
      nodeSelector: { [NODE_LABEL]: topology.nodes[0]!.name },
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'dnsmasq',
          image: probeImage('musl'),
          imagePullPolicy: 'Never',
          command: ['dnsmasq'],
          args: upstreamDnsArgs(topology),
          env: [{ name: 'NODE_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }],
          readinessProbe: { tcpSocket: { port: 53 }, periodSeconds: 1 },
        },
      ],
    },
  };
}

/** Creates the upstream DNS pod and returns its address once it is Ready. */
export async function deployUpstreamDns(ctx: KindContext, topology: Topology, runId: string): Promise<string> {
  await ctx.shell(kubectl(ctx, 'apply', '-f', '-'), { input: toYamlStream([upstreamDnsManifest(topology, runId)]), timeoutMs: 60_000 });
  await ctx.shell(kubectl(ctx, '-n', POD_NAMESPACE, 'wait', '--for=condition=Ready', `pod/${UPSTREAM_DNS}`, '--timeout=120s'), { timeoutMs: 130_000 });
  const pod = await kubectlJson<KPod>(ctx, ['-n', POD_NAMESPACE, 'get', 'pod', UPSTREAM_DNS]);
  if (!isReady(pod) || !pod.status.podIP) throw new VxError('E_KIND_UPSTREAM', `${UPSTREAM_DNS} is not Ready or has no address`);
  return pod.status.podIP;
}

/** kind's Corefile with its `forward` pointed at the run's upstream (CoreDNS's default policy), before CoreDNS rolls out. */
export async function forwardToUpstream(ctx: KindContext, upstream: string): Promise<void> {
  const corefile = await readCorefile(ctx);
  const next = corefileWithForward(corefile, { servers: [upstream], policy: 'health-checked' });
  await ctx.shell(kubectl(ctx, '-n', 'kube-system', 'patch', 'configmap', 'coredns', '--type=merge', '-p', JSON.stringify({ data: { Corefile: next } })));
}

async function readCorefile(ctx: KindContext): Promise<string> {
  const cm = await kubectlJson<ConfigMap>(ctx, ['-n', 'kube-system', 'get', 'configmap', 'coredns']);
  const text = cm.data.Corefile;
  if (!text) throw new VxError('E_KIND_COREDNS', 'ConfigMap kube-system/coredns has no Corefile');
  return text;
}

interface ConfigMap {
  data: Record<string, string>;
}

/**
 * CoreDNS's forwarding on kind: the Corefile in ConfigMap kube-system/coredns, applied by a rollout. A rollout
 * replaces every replica, so `settled` (the cluster's) waits for it and reads the new replicas.
 */
export class KindClusterDns implements ClusterDnsControl {
  constructor(
    private readonly ctx: KindContext,
    private readonly runId: string,
    private readonly settled: () => Promise<void>,
  ) {}

  private corefile(): Promise<string> {
    return readCorefile(this.ctx);
  }

  async upstreams(): Promise<UpstreamConfig> {
    return forwardOf(await this.corefile());
  }

  async setUpstreams(servers: readonly string[], policy: ForwardPolicy): Promise<void> {
    const next = corefileWithForward(await this.corefile(), { servers: [...servers], policy });
    const patch = JSON.stringify({ data: { Corefile: next } });
    await this.ctx.shell(kubectl(this.ctx, '-n', 'kube-system', 'patch', 'configmap', 'coredns', '--type=merge', '-p', patch));
    // The reload plugin would take up to a ConfigMap sync period; a rollout applies it now and waits for it.
    await this.ctx.shell(kubectl(this.ctx, '-n', 'kube-system', 'rollout', 'restart', 'deployment/coredns'));
    await this.settled();
  }

  async deadUpstream(): Promise<string> {
    await this.ctx.shell(kubectl(this.ctx, 'apply', '-f', '-'), { input: toYamlStream([deadUpstreamManifest(this.runId)]) });
    return waitFor(`${DEAD} to run`, async () => {
      const pods = await kubectlJson<KList<KPod>>(this.ctx, ['-n', POD_NAMESPACE, 'get', 'pods', '-l', 'vxchaos.io/role=dead-upstream']);
      const ip = pods.items[0]?.status.podIP;
      if (!ip || pods.items[0]?.status.phase !== 'Running') throw new Error('not running yet');
      return ip;
    });
  }
}
