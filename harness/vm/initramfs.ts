import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VxError } from '../errors.ts';
import type { CachedKernel } from './kernels.ts';
import { moduleNames } from './features.ts';
import { runStreaming } from './stream.ts';

export const GUEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'images', 'guest');
export const BUSYBOX = '/bin/busybox';

/** What the initramfs must load to reach the host root: PCI virtio, the 9p transport and filesystem, overlayfs. */
export const INITRAMFS_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'virtio_console'];

/** An ELF64 executable with a PT_INTERP program header is dynamically linked. */
export function hasInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return true;
  return false;
}

/** modules.dep → for each module name, its file and its direct dependencies' files. */
export function parseModulesDep(text: string): Map<string, { file: string; deps: string[] }> {
  const byName = new Map<string, { file: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const file = line.slice(0, i).trim();
    const deps = line.slice(i + 1).trim().split(/\s+/).filter(Boolean);
    byName.set(nameOf(file), { file, deps });
  }
  return byName;
}

export const nameOf = (file: string): string => (file.split('/').pop() ?? '').replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_');

/** The module files to insmod, dependencies first; built-in modules need nothing. */
export function loadOrder(wanted: readonly string[], dep: Map<string, { file: string; deps: string[] }>, builtin: Set<string>): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const d of dep.get(nameOf(file))?.deps ?? []) visit(d);
    order.push(file);
  };
  const missing: string[] = [];
  for (const w of wanted) {
    const n = w.replace(/-/g, '_');
    const e = dep.get(n);
    if (e) visit(e.file);
    else if (!builtin.has(n)) missing.push(w);
  }
  if (missing.length) throw new VxError('E_KERNEL_UNSUPPORTED', `the kernel has neither as module nor built in: ${missing.join(', ')}`);
  return order;
}

/**
 * A tiny initramfs for this kernel: busybox-static, images/guest/init and the modules it needs, as a newc
 * cpio made with Debian's cpio. Cached beside the kernel, keyed by what goes in.
 */
export async function buildInitramfs(k: CachedKernel, log: (l: string) => void = () => undefined): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new VxError('E_MISSING_TOOL', `${BUSYBOX} missing: install busybox-static (npm run setup -- --with vm)`);
  // Debian's plain busybox package installs a dynamic /bin/busybox too; the initramfs has no libc.
  if (hasInterpreter(readFileSync(BUSYBOX))) throw new VxError('E_MISSING_TOOL', `${BUSYBOX} is dynamically linked: install busybox-static`);
  const init = readFileSync(join(GUEST_DIR, 'init'));
  const dep = parseModulesDep(readFileSync(join(k.modulesDir, 'modules.dep'), 'utf8'));
  const order = loadOrder(INITRAMFS_MODULES, dep, moduleNames(k.modulesDir).builtin);
  const key = createHash('sha256').update(init).update(order.join('\n')).update(String(statSync(BUSYBOX).size)).digest('hex').slice(0, 12);
  const out = join(k.root, `initramfs-${key}.cpio`);
  if (existsSync(out)) return out;
  log(`initramfs for ${k.release}: ${order.length} modules`);
  const stage = join(k.root, `.initramfs-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'bin'), { recursive: true });
  mkdirSync(join(stage, 'mods'));
  copyFileSync(BUSYBOX, join(stage, 'bin', 'busybox'));
  writeFileSync(join(stage, 'init'), init, { mode: 0o755 });
  const names: string[] = [];
  for (const [i, file] of order.entries()) {
    const name = `${String(i).padStart(2, '0')}-${nameOf(file)}.ko`;
    const src = join(k.modulesDir, file);
    // busybox insmod takes plain .ko only; newer Debian kernels compress their modules.
    if (file.endsWith('.ko.xz')) await runStreaming(['sh', '-c', 'xz -dc "$1" > "$2"', 'sh', src, join(stage, 'mods', name)], { timeoutMs: 60_000 });
    else if (file.endsWith('.ko.zst')) await runStreaming(['zstd', '-qdf', src, '-o', join(stage, 'mods', name)], { timeoutMs: 60_000 });
    else if (file.endsWith('.ko.gz')) await runStreaming(['sh', '-c', 'gzip -dc "$1" > "$2"', 'sh', src, join(stage, 'mods', name)], { timeoutMs: 60_000 });
    else copyFileSync(src, join(stage, 'mods', name));
    names.push(name);
  }
  writeFileSync(join(stage, 'mods', 'order'), `${names.join('\n')}\n`);
  await runStreaming(['sh', '-c', 'cd "$1" && find . | cpio -o -H newc --quiet > "$2"', 'sh', stage, `${out}.tmp`], { timeoutMs: 60_000 });
  renameSync(`${out}.tmp`, out);
  rmSync(stage, { recursive: true, force: true });
  // Older builds of this kernel's initramfs (a changed init script) are never used again.
  for (const f of readdirSync(k.root)) {
    const old = join(k.root, f);
    // A concurrent boot may be about to use a recent one.
    if (/^initramfs-\w+\.cpio$/.test(f) && old !== out && Date.now() - statSync(old).mtimeMs > 3_600_000) rmSync(old, { force: true });
  }
  return out;
}
