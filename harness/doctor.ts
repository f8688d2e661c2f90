import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
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
  for: ('cluster' | 'build' | 'bench' | 'report' | 'drops' | 'vm')[];
}

export const TOOLS: Tool[] = [
  { tool: 'ip', pkg: 'iproute2', why: 'namespaces, veth, VXLAN, routes, neighbours', for: ['cluster'] },
  { tool: 'bridge', pkg: 'iproute2', why: 'VXLAN FDB entries', for: ['cluster'] },
  { tool: 'iptables-restore', pkg: 'iptables', why: 'kube-proxy chains', for: ['cluster'] },
  { tool: 'nft', pkg: 'nftables', why: 'fault injection rules', for: ['cluster'] },
  { tool: 'conntrack', pkg: 'conntrack', why: 'flush and count conntrack entries', for: ['cluster'] },
  { tool: 'ethtool', pkg: 'ethtool', why: 'checksum offload settings', for: ['cluster'] },
  { tool: 'unbound', pkg: 'unbound', why: 'cluster DNS replicas', for: ['cluster'] },
  { tool: 'dnsmasq', pkg: 'dnsmasq-base', why: 'upstream DNS', for: ['cluster'] },
  { tool: 'dig', pkg: 'dnsutils', why: 'DNS readiness checks', for: ['cluster'] },
  { tool: 'sysctl', pkg: 'procps', why: 'per-namespace kernel settings', for: ['cluster'] },
  { tool: 'bridge (CNI plugin)', pkg: 'containernetworking-plugins', why: 'pod networking as kubelet does it', paths: ['/usr/lib/cni/bridge', '/opt/cni/bin/bridge'], for: ['cluster'] },
  { tool: 'host-local (CNI plugin)', pkg: 'containernetworking-plugins', why: 'pod IPAM', paths: ['/usr/lib/cni/host-local', '/opt/cni/bin/host-local'], for: ['cluster'] },
  { tool: 'gcc', pkg: 'gcc', why: 'the glibc probe', for: ['build'] },
  { tool: 'musl-gcc', pkg: 'musl-tools', why: 'the musl (Alpine) probe', for: ['build'] },
  { tool: 'clang', pkg: 'clang', why: 'the drop tracer\'s BPF program', for: ['drops'] },
  { tool: 'bpftool', pkg: 'bpftool', why: 'vmlinux.h and the BPF skeleton of the drop tracer', paths: ['/usr/sbin/bpftool', '/usr/bin/bpftool'], for: ['drops'] },
  { tool: 'libbpf (headers)', pkg: 'libbpf-dev', why: 'the drop tracer\'s loader', paths: ['/usr/include/bpf/libbpf.h'], for: ['drops'] },
  { tool: 'libelf (headers)', pkg: 'libelf-dev', why: 'libbpf links against it', paths: ['/usr/include/libelf.h'], for: ['drops'] },
  { tool: 'zlib (headers)', pkg: 'zlib1g-dev', why: 'libbpf links against it', paths: ['/usr/include/zlib.h'], for: ['drops'] },
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
export const DROPTRACER_SRC = join(ROOT, 'images', 'droptracer');
export const DROPTRACER_BIN = join(BUILD_DIR, 'vxdrops');
export const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

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

/** Why the drop tracer cannot be built or run here, or undefined when it can be tried. */
export function dropTracerBlocker(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (!existsSync(KERNEL_BTF)) return `no kernel BTF (${KERNEL_BTF}): kernel built without CONFIG_DEBUG_INFO_BTF`;
  const missing = missingTools(['drops']);
  if (missing.length) return `missing ${missing.map((m) => `${m.tool} (${m.pkg})`).join(', ')}`;
  return undefined;
}

/**
 * Builds build/vxdrops (images/droptracer): vmlinux.h from this kernel's BTF (never committed), the CO-RE
 * BPF object, its skeleton, the loader. Never throws: the rest of the harness works without it.
 */
export async function buildDropTracer(log: (s: string) => void = () => undefined): Promise<{ ok: true } | { ok: false; why: string }> {
  const blocker = dropTracerBlocker();
  if (blocker) return { ok: false, why: blocker };
  const [bpfSrc, loaderSrc, header] = ['vxdrops.bpf.c', 'vxdrops.c', 'vxdrops.h'].map((f) => join(DROPTRACER_SRC, f)) as [string, string, string];
  if ([bpfSrc, loaderSrc, header].every((src) => fresh(DROPTRACER_BIN, src))) return { ok: true };
  const dir = join(BUILD_DIR, 'droptracer');
  mkdirSync(dir, { recursive: true });
  const arch = ({ x64: 'x86', arm64: 'arm64', s390x: 's390', ppc64: 'powerpc', riscv64: 'riscv' } as Record<string, string>)[process.arch];
  if (!arch) return { ok: false, why: `no BPF target arch for ${process.arch}` };
  const obj = join(dir, 'vxdrops.bpf.o');
  try {
    log(`building vxdrops: vmlinux.h from ${KERNEL_BTF}, BPF object, skeleton, loader`);
    const btf = await shell(['bpftool', 'btf', 'dump', 'file', KERNEL_BTF, 'format', 'c'], { timeoutMs: 60_000 });
    writeFileSync(join(dir, 'vmlinux.h'), btf.stdout);
    await shell(['clang', '-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, '-I', dir, '-I', DROPTRACER_SRC, '-c', bpfSrc, '-o', obj], { timeoutMs: 120_000 });
    const skel = await shell(['bpftool', 'gen', 'skeleton', obj, 'name', 'vxdrops_bpf'], { timeoutMs: 60_000 });
    writeFileSync(join(dir, 'vxdrops.skel.h'), skel.stdout);
    await shell(['gcc', '-O2', '-Wall', '-I', dir, '-I', DROPTRACER_SRC, '-o', DROPTRACER_BIN, loaderSrc, '-lbpf', '-lelf', '-lz'], { timeoutMs: 120_000 });
    return { ok: true };
  } catch (e) {
    return { ok: false, why: `build failed: ${(e as Error).message.split('\n').slice(0, 4).join(' ')}` };
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
  const purposes = opts.purposes ?? ['cluster', 'build'];
  const missing = missingTools(purposes);
  // The drop tracer is optional: its packages go in a separate, non-fatal install.
  const dropsMissing = purposes.includes('build') ? missingTools(['drops']) : [];
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
  if (dropsMissing.length && isRoot() && onPath('apt-get')) {
    const pkgs = [...new Set(dropsMissing.map((m) => m.pkg))];
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    log(`installing ${pkgs.join(' ')} (drop tracer)`);
    const r = await shell(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs], { timeoutMs: 1_200_000, env, nothrow: true });
    if (r.exitCode !== 0) {
      await shell(['apt-get', 'update', '-qq'], { timeoutMs: 600_000, env, nothrow: true });
      await shell(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs], { timeoutMs: 1_200_000, env, nothrow: true });
    }
  }
  await buildProbes(log);
  if (purposes.includes('build')) {
    const drops = await buildDropTracer(log);
    // Said even with --quiet: a run without the tracer reports every cell's drops as unavailable.
    if (!drops.ok) console.log(`drops: unavailable (${drops.why})`);
  }
  log('setup complete: system tools present, probes built');
}

export interface DoctorLine {
  tool: string;
  pkg: string;
  ok: boolean;
  why: string;
}

export function doctorReport(): { lines: DoctorLine[]; root: boolean; probes: Record<string, boolean>; drops: { ok: boolean; why?: string } } {
  const dropsWhy = dropTracerBlocker() ?? (existsSync(DROPTRACER_BIN) ? undefined : 'not built — npm run setup');
  return {
    drops: dropsWhy ? { ok: false, why: dropsWhy } : { ok: true },
    lines: TOOLS.map((t) => ({ tool: t.tool, pkg: t.pkg, ok: present(t), why: `${t.why} (${t.for.join(', ')})` })),
    root: isRoot(),
    probes: {
      'vxprobe-musl': existsSync(join(BUILD_DIR, 'vxprobe-musl')),
      'vxprobe-glibc': existsSync(join(BUILD_DIR, 'vxprobe-glibc')),
    },
  };
}

export { VxError };
