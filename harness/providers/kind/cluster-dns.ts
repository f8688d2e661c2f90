import { VxError } from '../../errors.ts';
import type { ClusterDnsControl, ForwardPolicy, UpstreamConfig } from '../provider.ts';
import { kubectl, kubectlJson, waitFor, type KindContext, type KList, type KPod } from './context.ts';
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

interface ConfigMap {
  data: Record<string, string>;
}

/** CoreDNS's forwarding on kind: the Corefile in ConfigMap kube-system/coredns, applied by a rollout. */
export class KindClusterDns implements ClusterDnsControl {
  constructor(
    private readonly ctx: KindContext,
    private readonly runId: string,
  ) {}

  private async corefile(): Promise<string> {
    const cm = await kubectlJson<ConfigMap>(this.ctx, ['-n', 'kube-system', 'get', 'configmap', 'coredns']);
    const text = cm.data.Corefile;
    if (!text) throw new VxError('E_KIND_COREDNS', 'ConfigMap kube-system/coredns has no Corefile');
    return text;
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
    await this.ctx.shell(kubectl(this.ctx, '-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=300s'), { timeoutMs: 310_000 });
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
