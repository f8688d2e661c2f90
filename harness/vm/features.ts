import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VxError } from '../errors.ts';
import type { CachedKernel } from './kernels.ts';

/** What the guest needs from a kernel, by config symbol and by the module that provides it. */
export const REQUIRED: readonly { feature: string; config: string; module: string }[] = [
  { feature: 'VXLAN', config: 'VXLAN', module: 'vxlan' },
  { feature: 'nf_conntrack', config: 'NF_CONNTRACK', module: 'nf_conntrack' },
  { feature: 'nftables', config: 'NF_TABLES', module: 'nf_tables' },
  { feature: 'bridge', config: 'BRIDGE', module: 'bridge' },
  { feature: 'br_netfilter', config: 'BRIDGE_NETFILTER', module: 'br_netfilter' },
  { feature: 'veth', config: 'VETH', module: 'veth' },
  { feature: '9p (net)', config: 'NET_9P', module: '9pnet' },
  { feature: '9p over virtio', config: 'NET_9P_VIRTIO', module: '9pnet_virtio' },
  { feature: '9p filesystem', config: '9P_FS', module: '9p' },
  { feature: 'virtio-pci', config: 'VIRTIO_PCI', module: 'virtio_pci' },
  { feature: 'virtio-serial', config: 'VIRTIO_CONSOLE', module: 'virtio_console' },
  { feature: 'overlayfs', config: 'OVERLAY_FS', module: 'overlay' },
];

/** Built in or a module: a kernel config symbol's only states that give the feature. */
const CONFIG_ONLY: readonly { feature: string; config: string }[] = [
  { feature: 'network namespaces', config: 'NET_NS' },
  { feature: 'initramfs', config: 'BLK_DEV_INITRD' },
  { feature: 'devtmpfs', config: 'DEVTMPFS' },
];

export interface KernelFeatures {
  release: string;
  /** major.minor of the release, e.g. [6, 1]. */
  version: [number, number];
  /** skb:kfree_skb carries enum skb_drop_reason since 5.17. */
  dropReasons: boolean;
  /** BPF programs on tracepoints (the drop tracer). */
  bpf: boolean;
  /** Everything REQUIRED is there; else `missing` names it. */
  missing: string[];
}

export const versionOf = (release: string): [number, number] => {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
};

const atLeast = (v: [number, number], major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor);

export function parseConfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const kv = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (kv) m.set(kv[1]!, kv[2]!);
  }
  return m;
}

/** Module names (dashes as underscores) of a modules tree: loadable (modules.dep) and built in (modules.builtin). */
export function moduleNames(modulesDir: string): { loadable: Set<string>; builtin: Set<string> } {
  const name = (p: string) => (p.split('/').pop() ?? '').replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_');
  const read = (f: string) => (existsSync(join(modulesDir, f)) ? readFileSync(join(modulesDir, f), 'utf8') : '');
  return {
    loadable: new Set(read('modules.dep').split('\n').filter(Boolean).map((l) => name(l.split(':')[0]!))),
    builtin: new Set(read('modules.builtin').split('\n').filter(Boolean).map(name)),
  };
}

/** The kernel's features from its config (or, without one, its modules tree). Pure over the files. */
export function kernelFeatures(k: Pick<CachedKernel, 'release' | 'config' | 'modulesDir'>): KernelFeatures {
  const config = k.config && existsSync(k.config) ? parseConfig(readFileSync(k.config, 'utf8')) : undefined;
  const mods = moduleNames(k.modulesDir);
  const has = (r: { config: string; module?: string }): boolean => {
    const mod = r.module?.replace(/-/g, '_');
    if (config) {
      const v = config.get(r.config);
      if (v === 'y') return true;
      // =m counts only when the module file is really in the tree.
      return v === 'm' && mod !== undefined && mods.loadable.has(mod);
    }
    if (mod === undefined) return true; // unknown without a config: do not refuse
    return mods.loadable.has(mod) || mods.builtin.has(mod);
  };
  const version = versionOf(k.release);
  const missing = [
    ...REQUIRED.filter((r) => !has(r)).map((r) => `${r.feature} (CONFIG_${r.config})`),
    ...(config ? CONFIG_ONLY.filter((r) => config.get(r.config) !== 'y').map((r) => `${r.feature} (CONFIG_${r.config}=y)`) : []),
  ];
  return {
    release: k.release,
    version,
    dropReasons: atLeast(version, 5, 17),
    bpf: config ? config.get('BPF_SYSCALL') === 'y' && config.get('BPF_EVENTS') === 'y' : true,
    missing,
  };
}

export class KernelUnsupportedError extends VxError {
  constructor(
    readonly release: string,
    readonly missing: readonly string[],
  ) {
    super('E_KERNEL_UNSUPPORTED', `kernel ${release} cannot run the suite; it lacks: ${missing.join(', ')}`);
  }
}

/** Refuses a kernel that lacks what the guest needs, naming every missing piece at once. */
export function requireKernelFeatures(k: Pick<CachedKernel, 'release' | 'config' | 'modulesDir'>): KernelFeatures {
  const f = kernelFeatures(k);
  if (f.missing.length) throw new KernelUnsupportedError(k.release, f.missing);
  return f;
}
