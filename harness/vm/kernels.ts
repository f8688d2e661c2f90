import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { VxError } from '../errors.ts';
import { runStreaming } from './stream.ts';

/** Debian suites whose generic amd64 kernel can be fetched with apt (the `-cloud` flavour has no 9p). */
export const DEBIAN_SUITES = ['bullseye', 'bookworm', 'trixie'] as const;
export type DebianSuite = (typeof DEBIAN_SUITES)[number];

export type KernelSpec = { kind: 'host' } | { kind: 'debian'; suite: DebianSuite } | { kind: 'path'; path: string };

/** A kernel ready to boot: image, config and a depmod-ed modules tree under `root/lib/modules/<release>`. */
export interface CachedKernel {
  release: string;
  /** Where it came from: "debian:bookworm linux-image-6.1.0-41-amd64 6.1.158-1", "deb:/path", "dir:/path". */
  source: string;
  /** The `--kernel` spec that produced it (listing and reuse). */
  spec: string;
  vmlinuz: string;
  /** The kernel's build config (config-<release> of the package), when it ships one. */
  config?: string;
  /** Directory holding lib/modules/<release>. */
  root: string;
  modulesDir: string;
  fetchedAt: string;
}

export const KERNEL_META = 'kernel.json';

export function cacheDir(): string {
  return process.env.VXCHAOS_CACHE_DIR ?? join(homedir(), '.cache', 'vxchaos');
}

export const kernelsDir = (): string => join(cacheDir(), 'kernels');

export function parseKernelSpec(spec: string): KernelSpec {
  if (spec === 'host') return { kind: 'host' };
  const m = /^debian:(.+)$/.exec(spec);
  if (m) {
    const suite = m[1] as DebianSuite;
    if (!DEBIAN_SUITES.includes(suite)) {
      throw new VxError('E_KERNEL_SPEC', `unknown Debian suite "${m[1]}" in --kernel ${spec}; known: ${DEBIAN_SUITES.map((s) => `debian:${s}`).join(', ')}`);
    }
    return { kind: 'debian', suite };
  }
  if (spec.includes('/') || spec.endsWith('.deb')) return { kind: 'path', path: resolve(spec) };
  throw new VxError('E_KERNEL_SPEC', `--kernel ${spec}: expected host, debian:<${DEBIAN_SUITES.join('|')}>, a .deb, or a directory with vmlinuz and lib/modules`);
}

// ---------------------------------------------------------------------------------------------------------
// A private apt configuration: its own sources list for one suite, its own lists/cache/status, the system's
// Debian keyring for signatures; the system's apt sources and state are never read for packages nor written.

export interface Mirrors {
  debian: string;
  security?: string;
  keyring: string;
}

const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

interface SourceEntry {
  uris: string[];
  suites: string[];
  signedBy?: string;
}

/** Both formats of apt sources: one-line (`deb [opts] uri suite comp…`) and deb822 (`Types:/URIs:/Suites:`). */
export function parseAptSources(text: string, deb822: boolean): SourceEntry[] {
  const out: SourceEntry[] = [];
  if (deb822) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const f: Record<string, string> = {};
      let key = '';
      for (const line of stanza.split('\n')) {
        if (line.startsWith('#')) continue;
        const kv = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (kv) f[(key = kv[1]!.toLowerCase())] = kv[2]!;
        else if (/^\s/.test(line) && key) f[key] += ` ${line.trim()}`;
      }
      if (!f.types?.split(/\s+/).includes('deb') || f.enabled === 'no') continue;
      out.push({ uris: (f.uris ?? '').split(/\s+/).filter(Boolean), suites: (f.suites ?? '').split(/\s+/).filter(Boolean), signedBy: f['signed-by'] });
    }
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const signedBy = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    out.push({ uris: [m[2]!], suites: [m[3]!], signedBy });
  }
  return out;
}

const DEBIAN_CODENAMES = /^(buster|bullseye|bookworm|trixie|forky|duke|sid|stable|oldstable|testing|unstable)(-updates|-backports|-security|\/updates)?$/;

/** The mirror the system already uses for Debian (main archive and security), read from /etc/apt/sources.list*. */
export function systemMirrors(etc = '/etc/apt'): Mirrors {
  const entries: SourceEntry[] = [];
  const files = [join(etc, 'sources.list')];
  const parts = join(etc, 'sources.list.d');
  if (existsSync(parts)) for (const f of readdirSync(parts).sort()) files.push(join(parts, f));
  for (const f of files) {
    if (!existsSync(f) || !/\.(list|sources)$/.test(f)) continue;
    entries.push(...parseAptSources(readFileSync(f, 'utf8'), f.endsWith('.sources')));
  }
  const debianEntries = entries.filter((e) => e.suites.some((s) => DEBIAN_CODENAMES.test(s)));
  const main = debianEntries.find((e) => e.suites.some((s) => !/security|\/updates/.test(s)));
  const sec = debianEntries.find((e) => e.suites.some((s) => /-security$|\/updates$/.test(s)));
  const keyring = [main?.signedBy, DEBIAN_ARCHIVE_KEYRING].find((k) => k?.startsWith('/') && existsSync(k));
  if (!keyring) {
    throw new VxError('E_KERNEL_FETCH', `no Debian archive keyring to check kernel package signatures (${DEBIAN_ARCHIVE_KEYRING}); install debian-archive-keyring`);
  }
  return {
    // A host on another distribution (e.g. Ubuntu) has no Debian mirror configured: use Debian's redirector.
    debian: main?.uris[0] ?? 'http://deb.debian.org/debian',
    security: sec?.uris[0] ?? (main ? undefined : 'http://deb.debian.org/debian-security'),
    keyring,
  };
}

export interface AptConfig {
  dir: string;
  sourcesList: string;
  /** `-o` options that point every apt path at `dir` (never at the system's sources, state or cache). */
  options: string[];
}

export function aptConfig(suite: DebianSuite, mirrors: Mirrors, dir: string): AptConfig {
  const opts = `[arch=amd64 signed-by=${mirrors.keyring}]`;
  const lines = [`deb ${opts} ${mirrors.debian} ${suite} main`];
  // Kernel updates land in the security suite first.
  if (mirrors.security) lines.push(`deb ${opts} ${mirrors.security} ${suite}-security main`);
  const sourcesList = `${lines.join('\n')}\n`;
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return {
    dir,
    sourcesList,
    options: [
      ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
      ...o('Dir::Etc::SourceParts', join(dir, 'sources.list.d')),
      ...o('Dir::Etc::Preferences', join(dir, 'preferences')),
      ...o('Dir::Etc::PreferencesParts', join(dir, 'preferences.d')),
      ...o('Dir::Etc::TrustedParts', join(dir, 'trusted.gpg.d')),
      ...o('Dir::State', join(dir, 'state')),
      ...o('Dir::State::Lists', join(dir, 'state', 'lists')),
      ...o('Dir::State::status', join(dir, 'state', 'status')),
      ...o('Dir::Cache', join(dir, 'cache')),
      ...o('Dir::Cache::Archives', join(dir, 'cache', 'archives')),
      ...o('APT::Architecture', 'amd64'),
      ...o('APT::Architectures', 'amd64'),
      ...o('Acquire::Languages', 'none'),
      // The cache lives in root's home, which the unprivileged _apt download user cannot write.
      ...o('APT::Sandbox::User', 'root'),
    ],
  };
}

function writeAptConfig(c: AptConfig): void {
  for (const d of ['sources.list.d', 'preferences.d', 'trusted.gpg.d', 'state/lists/partial', 'cache/archives/partial', 'debs']) {
    mkdirSync(join(c.dir, d), { recursive: true });
  }
  writeFileSync(join(c.dir, 'sources.list'), c.sourcesList);
  if (!existsSync(join(c.dir, 'state', 'status'))) writeFileSync(join(c.dir, 'state', 'status'), '');
}

/** `apt-cache depends linux-image-amd64` output → the versioned generic image package it pulls in. */
export function imagePackageFrom(depends: string): string | undefined {
  for (const line of depends.split('\n')) {
    const m = /^\s*\|?Depends:\s*(linux-image-[0-9][^\s]*-amd64(?:-unsigned)?)\s*$/.exec(line);
    if (m && !m[1]!.includes('cloud')) return m[1];
  }
  return undefined;
}

type Log = (line: string) => void;

async function apt(tool: 'apt-get' | 'apt-cache', c: AptConfig, args: string[], log: Log, cwd?: string, timeoutMs = 600_000): Promise<string> {
  const r = await runStreaming([tool, '-q', ...c.options, ...args], { timeoutMs, cwd, onLine: tool === 'apt-get' ? (l) => /^(Get|Hit|Ign|Err|W:|E:|Fetched)/.test(l) && log(`  ${l}`) : undefined });
  return r.stdout;
}

/** Fetches (once) the suite's generic amd64 kernel with apt and prepares it for booting. */
export async function fetchDebianKernel(suite: DebianSuite, log: Log = () => undefined, opts: { refresh?: boolean } = {}): Promise<CachedKernel> {
  const spec = `debian:${suite}`;
  const cached = listCached().find((k) => k.spec === spec);
  if (cached && !opts.refresh) return cached;
  const c = aptConfig(suite, systemMirrors(), join(cacheDir(), 'apt', suite));
  writeAptConfig(c);
  log(`kernel ${spec}: reading the package index (${c.sourcesList.trim().split('\n').length} sources, signatures checked by apt)`);
  await apt('apt-get', c, ['update'], log);
  const pkg = imagePackageFrom(await apt('apt-cache', c, ['depends', '--no-recommends', '--no-suggests', 'linux-image-amd64'], log));
  if (!pkg) throw new VxError('E_KERNEL_FETCH', `${spec}: linux-image-amd64 depends on no generic linux-image-*-amd64 package`);
  const version = (await apt('apt-cache', c, ['policy', pkg], log)).match(/Candidate:\s*(\S+)/)?.[1] ?? '?';
  log(`kernel ${spec}: downloading ${pkg} ${version}`);
  const debs = join(c.dir, 'debs');
  for (const f of readdirSync(debs)) if (f.startsWith(`${pkg}_`)) rmSync(join(debs, f));
  await apt('apt-get', c, ['download', pkg], log, debs, 1_200_000);
  const deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new VxError('E_KERNEL_FETCH', `${spec}: apt-get download ${pkg} left no .deb in ${debs}`);
  const k = await installDeb(join(debs, deb), spec, `${spec} ${pkg} ${version}`, log);
  rmSync(join(debs, deb), { force: true });
  return k;
}

/** Extracts a kernel .deb into the cache, lays its modules out under lib/modules and runs depmod. */
export async function installDeb(deb: string, spec: string, source: string, log: Log = () => undefined): Promise<CachedKernel> {
  const tmp = join(kernelsDir(), `.extract-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    log(`kernel ${spec}: extracting ${basename(deb)}`);
    await runStreaming(['dpkg-deb', '-x', deb, tmp], { timeoutMs: 300_000 });
    return await installTree(tmp, spec, source, log, true);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The kernel image and modules of an extracted package root (or a directory laid out the same way). */
export function findKernelFiles(dir: string): { vmlinuz: string; release: string; config?: string; modules: string } {
  const bootDirs = [join(dir, 'boot'), dir];
  for (const b of bootDirs) {
    if (!existsSync(b)) continue;
    const img = readdirSync(b).find((f) => /^(vmlinuz|bzImage)(-.+)?$/.test(f));
    if (!img) continue;
    const modRoots = [join(dir, 'lib', 'modules'), join(dir, 'usr', 'lib', 'modules'), join(dir, 'modules')].filter((d) => existsSync(d));
    const named = /^vmlinuz-(.+)$/.exec(img)?.[1];
    for (const mr of modRoots) {
      const rels = readdirSync(mr).filter((r) => statSync(join(mr, r)).isDirectory());
      const release = named && rels.includes(named) ? named : rels.length === 1 ? rels[0] : undefined;
      if (!release) continue;
      const config = [join(b, `config-${release}`), join(mr, release, 'config'), join(b, 'config')].find((f) => existsSync(f));
      return { vmlinuz: join(b, img), release, config, modules: join(mr, release) };
    }
  }
  throw new VxError('E_KERNEL_SPEC', `${dir}: no kernel image (boot/vmlinuz-<release>) with its modules (lib/modules/<release>) found`);
}

async function installTree(dir: string, spec: string, source: string, log: Log, move: boolean): Promise<CachedKernel> {
  const f = findKernelFiles(dir);
  // A user's kernel may share its release with a Debian one: never overwrite the other.
  const dest = join(kernelsDir(), spec.startsWith('debian:') ? f.release : `${f.release}-local-${createHash('sha256').update(spec).digest('hex').slice(0, 8)}`);
  const staging = `${dest}.new-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'lib', 'modules'), { recursive: true });
  const modulesDir = join(staging, 'lib', 'modules', f.release);
  if (move) {
    renameSync(f.modules, modulesDir);
    renameSync(f.vmlinuz, join(staging, 'vmlinuz'));
    if (f.config) renameSync(f.config, join(staging, 'config'));
  } else {
    await runStreaming(['cp', '-a', f.modules, modulesDir], { timeoutMs: 300_000 });
    await runStreaming(['cp', f.vmlinuz, join(staging, 'vmlinuz')], { timeoutMs: 60_000 });
    if (f.config) await runStreaming(['cp', f.config, join(staging, 'config')], { timeoutMs: 60_000 });
  }
  // Debian's kernel packages ship no modules.dep: the guest's modprobe needs one.
  log(`kernel ${spec}: depmod ${f.release}`);
  await runStreaming(['depmod', '-b', staging, f.release], { timeoutMs: 300_000 });
  rmSync(dest, { recursive: true, force: true });
  renameSync(staging, dest);
  const k: CachedKernel = {
    release: f.release,
    source,
    spec,
    vmlinuz: join(dest, 'vmlinuz'),
    config: f.config ? join(dest, 'config') : undefined,
    root: dest,
    modulesDir: join(dest, 'lib', 'modules', f.release),
    fetchedAt: new Date().toISOString(),
  };
  writeFileSync(join(dest, KERNEL_META), `${JSON.stringify(k, null, 2)}\n`);
  log(`kernel ${spec}: ready (${f.release})`);
  return k;
}

/** A user's own kernel: a .deb, or a directory with boot/vmlinuz-<release> (or vmlinuz) and lib/modules/<release>. */
export async function installLocalKernel(path: string, log: Log = () => undefined): Promise<CachedKernel> {
  if (!existsSync(path)) throw new VxError('E_KERNEL_SPEC', `--kernel ${path}: no such file or directory`);
  const mtime = statSync(path).mtime.toISOString();
  const source = `${path.endsWith('.deb') ? 'deb' : 'dir'}:${path} (${mtime})`;
  const cached = listCached().find((k) => k.spec === path && k.source === source);
  if (cached) return cached;
  return path.endsWith('.deb') ? installDeb(path, path, source, log) : installTree(path, path, source, log, false);
}

/** Resolves a `--kernel` spec to a bootable kernel in the cache, fetching it when needed; `host` is no VM. */
export async function resolveKernel(spec: string, log: Log = () => undefined): Promise<CachedKernel | undefined> {
  const s = parseKernelSpec(spec);
  if (s.kind === 'host') return undefined;
  if (s.kind === 'debian') return fetchDebianKernel(s.suite, log);
  return installLocalKernel(s.path, log);
}

export function listCached(): CachedKernel[] {
  const dir = kernelsDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((d) => {
    const meta = join(dir, d, KERNEL_META);
    if (!existsSync(meta)) return [];
    try {
      const k = JSON.parse(readFileSync(meta, 'utf8')) as CachedKernel;
      return existsSync(k.vmlinuz) ? [k] : [];
    } catch {
      return [];
    }
  });
}

export interface KernelListing {
  spec: string;
  cached?: CachedKernel;
  fetchable: boolean;
}

/** What `vxchaos kernels` shows: every Debian suite (cached or fetchable) plus any user kernel in the cache. */
export function listKernels(): KernelListing[] {
  const cached = listCached();
  const rows: KernelListing[] = [{ spec: 'host', fetchable: false }];
  for (const s of DEBIAN_SUITES) rows.push({ spec: `debian:${s}`, cached: cached.find((k) => k.spec === `debian:${s}`), fetchable: true });
  for (const k of cached) if (!k.spec.startsWith('debian:')) rows.push({ spec: k.spec, cached: k, fetchable: false });
  return rows;
}

/** `vxchaos kernels`. */
export function printKernels(out: (line: string) => void = console.log): void {
  out(`kernel cache: ${kernelsDir()}`);
  for (const r of listKernels()) {
    if (r.spec === 'host') out(`  host              this machine's kernel, no VM`);
    else if (r.cached) out(`  ${r.spec.padEnd(17)} cached   ${r.cached.release}  (${r.cached.source}, ${r.cached.fetchedAt.slice(0, 10)})`);
    else out(`  ${r.spec.padEnd(17)} fetchable with apt on first use`);
  }
}
