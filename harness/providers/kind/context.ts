import pRetry from 'p-retry';
import { VxError } from '../../errors.ts';
import type { ExecOptions, ExecResult, Shell } from '../../exec/shell.ts';

/** A container of a pod, the unit `kubectl exec` and the client-node Exec API address. */
export interface PodRef {
  namespace: string;
  name: string;
  container: string;
}

/** Runs argv in a pod's container; the real one streams through @kubernetes/client-node, plans record it. */
export type PodExec = (pod: PodRef, argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

/** What every kind step needs: the shell seam, the cluster's name and its own kubeconfig. */
export interface KindContext {
  shell: Shell;
  /** kind cluster name (kind-<cluster> is the kubeconfig context). */
  cluster: string;
  /** A kubeconfig owned by the run, so the user's ~/.kube/config is never touched. */
  kubeconfig: string;
  podExec: PodExec;
}

/** kubectl argv pinned to this cluster's kubeconfig and context. */
export function kubectl(ctx: Pick<KindContext, 'cluster' | 'kubeconfig'>, ...args: string[]): string[] {
  return ['kubectl', '--kubeconfig', ctx.kubeconfig, '--context', `kind-${ctx.cluster}`, ...args];
}

export async function kubectlJson<T>(ctx: KindContext, args: string[], opts: ExecOptions = {}): Promise<T> {
  const out = await ctx.shell(kubectl(ctx, ...args, '-o', 'json'), opts);
  try {
    return JSON.parse(out.stdout) as T;
  } catch {
    throw new VxError('E_KIND_OUTPUT', `kubectl ${args.join(' ')} -o json: output is not JSON: ${out.stdout.slice(0, 200)}`);
  }
}

export class KindWaitError extends VxError {
  constructor(what: string, timeoutMs: number, last: unknown) {
    const why = last instanceof Error ? last.message : String(last);
    super('E_KIND_WAIT', `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; last check: ${why}`);
    this.name = 'KindWaitError';
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  /** First pause between checks; grows by 1.5× up to 5 s. */
  minIntervalMs?: number;
}

/**
 * Poll `check` until it resolves (readiness that kubectl wait cannot express: annotations, spread, DNS).
 * Bounded in time, never in attempts, so a slow runner only costs time up to the bound.
 */
export async function waitFor<T>(what: string, check: () => Promise<T>, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 180_000;
  try {
    return await pRetry(() => check(), {
      retries: 100_000,
      maxRetryTime: timeoutMs,
      minTimeout: opts.minIntervalMs ?? 500,
      maxTimeout: 5_000,
      factor: 1.5,
      randomize: false,
    });
  } catch (e) {
    throw new KindWaitError(what, timeoutMs, e);
  }
}

/** Kubernetes object shapes the provider reads back (only the fields it uses). */
export interface KNode {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { podCIDR?: string; taints?: { key: string; effect: string }[] };
  status: { addresses?: { type: string; address: string }[]; conditions?: { type: string; status: string }[]; nodeInfo?: Record<string, string> };
}

export interface KPod {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: { name: string; image: string }[] };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export interface KList<T> {
  items: T[];
}

export function isReady(o: { status: { conditions?: { type: string; status: string }[] } }): boolean {
  return o.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function internalIP(n: KNode): string | undefined {
  return n.status.addresses?.find((a) => a.type === 'InternalIP')?.address;
}
