import type { Progress } from '../progress.ts';
import type { Provider } from './provider.ts';
import { planKind } from './kind/plan.ts';
import { KindProvider } from './kind/provider.ts';
import { GuestNetnsProvider } from './netns/guest.ts';
import { NetnsProvider } from './netns/provider.ts';

/** What the CLI knows of the command line; each provider reads the options it has. */
export interface ProviderOptions {
  outDir: string;
  keep: boolean;
  /** kind: Kubernetes version of the pinned node image. */
  k8sVersion?: string;
  /** kind: pinned kube-flannel version. */
  flannelVersion?: string;
  /** The kernel under test: `host`, `debian:bullseye|bookworm|trixie`, or a path (providers with `kernels`). */
  kernel?: string;
}

export interface ProviderEntry {
  name: string;
  description: string;
  create(opts: ProviderOptions): Provider;
  /** Whether --kernel can choose another kernel than the host's (netns: a qemu microVM per kernel). */
  kernels?: boolean;
  /**
   * --dry-run: a provider that records instead of running, for the real runner to drive; render() prints the
   * plan. Without one, a dry run lists the cells and what the provider would skip.
   */
  plan?(opts: ProviderOptions & { suite: string }): { provider: Provider; progress: Progress; render(): string };
}

/** The one place that names providers; everything else asks a Provider what it can do. */
export const PROVIDERS: readonly ProviderEntry[] = [
  {
    name: 'netns',
    description: 'embedded: network namespaces on this machine (root), real kernel datapath, emulated flanneld and kube-proxy',
    create: (o) => (o.kernel && o.kernel !== 'host' ? new GuestNetnsProvider(o.kernel) : new NetnsProvider()),
    kernels: true,
  },
  {
    name: 'kind',
    description: 'kind in Docker: real kube-flannel, kube-proxy and CoreDNS (GitHub Actions, a workstation with Docker)',
    create: (o) => new KindProvider({ outDir: o.outDir, keep: o.keep, k8sVersion: o.k8sVersion, flannelVersion: o.flannelVersion }),
    plan: (o) => planKind({ suite: o.suite, k8sVersion: o.k8sVersion, flannelVersion: o.flannelVersion }),
  },
];

export const DEFAULT_PROVIDER = PROVIDERS[0]!.name;

export function providerEntry(name: string): ProviderEntry {
  const e = PROVIDERS.find((p) => p.name === name);
  if (!e) throw new Error(`unknown provider ${name}`); // the CLI's choices() refuses it first
  return e;
}
