import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './config/suite.ts';
import { MissingToolError, NotRootError, VxError } from './errors.ts';
import { shell } from './exec/shell.ts';

export interface Tool {
  tool: string;
  /** Debian/Ubuntu package that provides it. */
  pkg: string;
  why: string;
  /** Absolute paths to look at, else found on PATH. */
  paths?: string[];
  for: ('netns' | 'build' | 'bench' | 'report' | 'vm')[];
}

export const TOOLS: Tool[] = [
  { tool: 'ip', pkg: 'iproute2', why: 'namespaces, veth, VXLAN, routes, neighbours', for: ['netns'] },
  { tool: 'bridge', pkg: 'iproute2', why: 'VXLAN FDB entries', for: ['netns'] },
  { tool: 'iptables-restore', pkg: 'iptables', why: 'kube-proxy chains', for: ['netns'] },
  { tool: 'nft', pkg: 'nftables', why: 'fault injection rules', for: ['netns'] },
  { tool: 'conntrack', pkg: 'conntrack', why: 'flush and count conntrack entries', for: ['netns'] },
  { tool: 'ethtool', pkg: 'ethtool', why: 'checksum offload settings', for: ['netns'] },
  { tool: 'unbound', pkg: 'unbound', why: 'cluster DNS replicas', for: ['netns'] },
  { tool: 'dnsmasq', pkg: 'dnsmasq-base', why: 'upstream DNS', for: ['netns'] },
  { tool: 'dig', pkg: 'dnsutils', why: 'DNS readiness checks', for: ['netns'] },
  { tool: 'sysctl', pkg: 'procps', why: 'per-namespace kernel settings', for: ['netns'] },
  { tool: 'bridge (CNI plugin)', pkg: 'containernetworking-plugins', why: 'pod networking as kubelet does it', paths: ['/usr/lib/cni/bridge', '/opt/cni/bin/bridge'], for: ['netns'] },
  { tool: 'host-local (CNI plugin)', pkg: 'containernetworking-plugins', why: 'pod IPAM', paths: ['/usr/lib/cni/host-local', '/opt/cni/bin/host-local'], for: ['netns'] },
  { tool: 'gcc', pkg: 'gcc', why: 'the glibc probe', for: ['build'] },
  { tool: 'musl-gcc', pkg: 'musl-tools', why: 'the musl (Alpine) probe', for: ['build'] },
  { tool: 'tcpdump', pkg: 'tcpdump', why: 'probe accuracy benchmark', for: ['bench'] },
  { tool: 'dnsperf', pkg: 'dnsperf', why: 'probe headroom benchmark', for: ['bench'] },
  { tool: 'chromium', pkg: 'chromium', why: 'HTML report test', paths: ['/usr/bin/chromium'], for: ['report'] },
  { tool: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: '--kernel: the guest VM', for: ['vm'] },
  { tool: 'busybox (static)', pkg: 'busybox-static', why: '--kernel: the guest initramfs', paths: ['/bin/busybox'], for: ['vm'] },
  { tool: 'cpio', pkg: 'cpio', why: '--kernel: packs the guest initramfs', for: ['vm'] },
  { tool: 'depmod', pkg: 'kmod', why: "--kernel: modules.dep for Debian's kernel packages; modprobe in the guest", paths: ['/sbin/depmod', '/usr/sbin/depmod'], for: ['vm'] },
  { tool: 'zstd', pkg: 'zstd', why: '--kernel: unpacks zstd kernels and modules (trixie)', for: ['vm'] },
  { tool: 'dpkg-deb', pkg: 'dpkg', why: '--kernel: extracts kernel packages', for: ['vm'] },
  { tool: 'debian-archive-keyring', pkg: 'debian-archive-keyring', why: '--kernel debian:*: apt checks the kernel packages against it', paths: ['/usr/share/keyrings/debian-archive-keyring.gpg'], for: ['vm'] },
];

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

export function present(t: Tool): boolean {
  return t.paths ? t.paths.some((p) => existsSync(p)) : onPath(t.tool);
}

export function missingTools(purposes: Tool['for'][number][]): Tool[] {
  return TOOLS.filter((t) => t.for.some((f) => purposes.includes(f)) && !present(t));
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function requireRoot(what: string): void {
  if (!isRoot()) throw new NotRootError(what);
}

export async function requireTools(...purposes: Tool['for'][number][]): Promise<void> {
  const missing = missingTools(purposes);
  if (missing.length) throw new MissingToolError(missing);
}

export const PROBE_SRC = join(ROOT, 'images', 'probe', 'vxprobe.c');
export const BUILD_DIR = join(ROOT, 'build');

const fresh = (out: string, src: string) => existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs;

/** Builds the two probes from one source: musl static (as in Alpine) and glibc (as in Debian). */
export async function buildProbes(log: (s: string) => void = () => undefined): Promise<void> {
  mkdirSync(BUILD_DIR, { recursive: true });
  const builds: [string, string[]][] = [
    ['vxprobe-musl', ['musl-gcc', '-static', '-O2', '-Wall', '-pthread', '-o', join(BUILD_DIR, 'vxprobe-musl'), PROBE_SRC]],
    ['vxprobe-glibc', ['gcc', '-O2', '-Wall', '-pthread', '-o', join(BUILD_DIR, 'vxprobe-glibc'), PROBE_SRC, '-lresolv']],
  ];
  for (const [name, argv] of builds) {
    if (fresh(join(BUILD_DIR, name), PROBE_SRC)) continue;
    log(`building ${name}: ${argv.join(' ')}`);
    await shell(argv, { timeoutMs: 120_000 });
  }
}

/**
 * `vxchaos setup`: installs missing Debian packages when it can (root + apt-get), otherwise says exactly
 * what to run; then builds the probes.
 */
export async function setup(opts: { quiet?: boolean; purposes?: Tool['for'][number][] } = {}): Promise<void> {
  const log = (s: string) => {
    if (!opts.quiet) console.log(s);
  };
  const purposes = opts.purposes ?? ['netns', 'build'];
  const missing = missingTools(purposes);
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))];
    if (!isRoot() || !onPath('apt-get')) throw new MissingToolError(missing);
    console.log(`installing ${pkgs.join(' ')} (missing: ${missing.map((m) => m.tool).join(', ')})`);
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    await shell(['apt-get', 'update', '-qq'], { timeoutMs: 600_000, env });
    await shell(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs], { timeoutMs: 1_200_000, env });
    const still = missingTools(purposes);
    if (still.length) throw new MissingToolError(still);
  }
  await buildProbes(log);
  log('setup complete: system tools present, probes built');
}

export interface DoctorLine {
  tool: string;
  pkg: string;
  ok: boolean;
  why: string;
}

export function doctorReport(): { lines: DoctorLine[]; root: boolean; probes: Record<string, boolean> } {
  return {
    lines: TOOLS.map((t) => ({ tool: t.tool, pkg: t.pkg, ok: present(t), why: `${t.why} (${t.for.join(', ')})` })),
    root: isRoot(),
    probes: {
      'vxprobe-musl': existsSync(join(BUILD_DIR, 'vxprobe-musl')),
      'vxprobe-glibc': existsSync(join(BUILD_DIR, 'vxprobe-glibc')),
    },
  };
}

export { VxError };
