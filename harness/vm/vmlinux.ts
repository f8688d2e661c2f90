import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from './features.ts';
import type { CachedKernel } from './kernels.ts';
import { runStreaming } from './stream.ts';

export type PayloadFormat = 'xz' | 'zstd' | 'gzip';

const MAGIC: readonly [PayloadFormat, Buffer][] = [
  ['xz', Buffer.from('fd377a585a00', 'hex')],
  ['zstd', Buffer.from('28b52ffd', 'hex')],
  ['gzip', Buffer.from('1f8b', 'hex')],
];

/**
 * The compressed kernel inside a bzImage, by the x86 boot protocol: setup_sects at 0x1f1 (0 means 4),
 * payload_offset/payload_length at 0x248 from the protected-mode code; the payload's last 4 bytes are the
 * uncompressed size.
 */
export function bzImagePayload(img: Buffer): { format: PayloadFormat; payload: Buffer; size: number } | undefined {
  if (img.length < 0x250 || img.readUInt32LE(0x202) !== 0x53726448 /* "HdrS" */) return undefined;
  const setupSects = img[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + img.readUInt32LE(0x248);
  const length = img.readUInt32LE(0x24c);
  if (length < 8 || start + length > img.length) return undefined;
  const payload = img.subarray(start, start + length);
  const format = MAGIC.find(([, m]) => payload.subarray(0, m.length).equals(m))?.[0];
  return format ? { format, payload, size: payload.readUInt32LE(payload.length - 4) } : undefined;
}

/**
 * The uncompressed vmlinux of a kernel built with PVH, which qemu boots directly: under TCG this skips the
 * firmware and the bzImage's own decompression, most of the time before the kernel's first line. Cached
 * beside the kernel; undefined (boot the bzImage) when the kernel has no PVH entry or cannot be unpacked.
 */
export async function pvhVmlinux(k: CachedKernel, log: (l: string) => void = () => undefined): Promise<string | undefined> {
  if (!k.config || parseConfig(readFileSync(k.config, 'utf8')).get('PVH') !== 'y') return undefined;
  const out = join(k.root, 'vmlinux');
  const p = bzImagePayload(readFileSync(k.vmlinuz));
  if (!p) return undefined;
  if (existsSync(out) && statSync(out).size === p.size) return out;
  log(`kernel ${k.release}: unpacking vmlinux (${p.format}) for a direct PVH boot`);
  const packed = join(k.root, `.payload-${process.pid}`);
  const tmp = `${out}.tmp-${process.pid}`;
  // zstd refuses the 4-byte size trailer after its frame (xz stops at the end of its stream by itself).
  writeFileSync(packed, p.format === 'zstd' ? p.payload.subarray(0, -4) : p.payload);
  try {
    const argv = {
      xz: ['sh', '-c', 'xz -dc --single-stream "$1" > "$2"', 'sh', packed, tmp],
      zstd: ['zstd', '-dqf', packed, '-o', tmp],
      gzip: ['sh', '-c', 'gzip -dc "$1" > "$2"', 'sh', packed, tmp],
    }[p.format];
    await runStreaming(argv, { timeoutMs: 120_000, nothrow: true });
    const ok = existsSync(tmp) && statSync(tmp).size === p.size && readFileSync(tmp).subarray(0, 4).equals(Buffer.from('7f454c46', 'hex'));
    if (!ok) {
      log(`kernel ${k.release}: vmlinux did not unpack whole; booting the bzImage`);
      return undefined;
    }
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(packed, { force: true });
    rmSync(tmp, { force: true });
  }
}
