import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelFeatures, requireKernelFeatures, REQUIRED } from './features.ts';
import { readFileSync } from 'node:fs';
import { hasInterpreter, loadOrder, parseModulesDep } from './initramfs.ts';
import { guestCmdline, qemuArgv } from './vm.ts';
import { bzImagePayload } from './vmlinux.ts';

function fakeKernel(release: string, config: string[], modules: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'vxc-kernel-'));
  const modulesDir = join(dir, 'lib', 'modules', release);
  mkdirSync(modulesDir, { recursive: true });
  writeFileSync(join(dir, 'config'), config.map((c) => `CONFIG_${c}\n`).join(''));
  writeFileSync(join(modulesDir, 'modules.dep'), modules.map((m) => `kernel/x/${m}.ko:\n`).join(''));
  writeFileSync(join(modulesDir, 'modules.builtin'), '');
  return { release, config: join(dir, 'config'), modulesDir };
}

const ALL = REQUIRED.map((r) => `${r.config}=m`);
const MODS = REQUIRED.map((r) => r.module);
const BASE = ['NET_NS=y', 'BLK_DEV_INITRD=y', 'DEVTMPFS=y', 'BPF_SYSCALL=y', 'BPF_EVENTS=y'];

describe('kernel features', () => {
  it('accepts a kernel with everything as modules and reports drop reasons from 5.17 on', () => {
    expect(kernelFeatures(fakeKernel('6.1.0-57-amd64', [...ALL, ...BASE], MODS))).toMatchObject({ missing: [], dropReasons: true, version: [6, 1] });
    expect(kernelFeatures(fakeKernel('5.10.0-46-amd64', [...ALL, ...BASE], MODS))).toMatchObject({ missing: [], dropReasons: false });
  });

  it('refuses a kernel without VXLAN or 9p, naming all that is missing', () => {
    const k = fakeKernel('4.9.0-x', [...ALL.filter((c) => !/^(VXLAN|9P_FS)=/.test(c)), ...BASE], MODS);
    expect(() => requireKernelFeatures(k)).toThrow(/lacks: VXLAN \(CONFIG_VXLAN\), 9p filesystem \(CONFIG_9P_FS\)/);
  });

  it('does not count =m when the module file is absent from the tree', () => {
    const k = fakeKernel('6.1.0-x', [...ALL, ...BASE], MODS.filter((m) => m !== 'nf_tables'));
    expect(kernelFeatures(k).missing).toEqual(['nftables (CONFIG_NF_TABLES)']);
  });
});

describe('initramfs module order', () => {
  it('loads dependencies first, each once, and skips built-ins', () => {
    const dep = parseModulesDep(
      'kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/net/9p/9pnet.ko\n' +
        'kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko\n' +
        'kernel/net/9p/9pnet.ko:\nkernel/fs/netfs/netfs.ko:\nkernel/drivers/virtio/virtio_ring.ko:\n',
    );
    expect(loadOrder(['9pnet_virtio', '9p', 'overlay'], dep, new Set(['overlay']))).toEqual([
      'kernel/net/9p/9pnet.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/net/9p/9pnet_virtio.ko',
      'kernel/fs/netfs/netfs.ko',
      'kernel/fs/9p/9p.ko',
    ]);
    expect(() => loadOrder(['virtio_console'], dep, new Set())).toThrow(/virtio_console/);
  });
});

describe('qemu command line', () => {
  const cfg = { id: 'ab12', cpus: 2, memMiB: 1024, tbSizeMiB: 256, vmlinuz: '/k/vmlinuz', initrd: '/k/i.cpio', cmdline: 'console=ttyS0', agentSocket: '/run/s', consoleLog: '/run/c', pidFile: '/run/p' };

  it('gives the guest no network device and the host root read-only', () => {
    const argv = qemuArgv({ ...cfg, accel: 'tcg' });
    expect(argv[argv.indexOf('-nic') + 1]).toBe('none');
    expect(argv.join(' ')).not.toMatch(/-nic user|-netdev|-net |hostfwd/);
    expect(argv.filter((a) => a === '-nic')).toHaveLength(1);
    expect(argv[argv.indexOf('-fsdev') + 1]).toMatch(/path=\/,.*readonly=on/);
    expect(argv[argv.indexOf('-accel') + 1]).toBe('tcg,thread=multi,tb-size=256');
    expect(argv[argv.indexOf('-name') + 1]).toBe('vxc-vm-ab12,process=vxc-vm-ab12');
  });

  it('refuses kernel command line values that would split', () => {
    expect(() => guestCmdline({ modulesRoot: '/a b', node: '/usr/bin/node', conntrackMax: 1, conntrackHash: 1 })).toThrow(/spaces/);
    expect(guestCmdline({ modulesRoot: '/m', node: '/usr/bin/node', conntrackMax: 262144, conntrackHash: 65536 })).toMatch(/vxc\.ctmax=262144 vxc\.cthash=65536$/);
    expect(guestCmdline({ modulesRoot: '/m', node: '/n', conntrackMax: 1, conntrackHash: 1, show: ['/tmp/ci/clone', '/home/x', '/run/c'] })).toContain('vxc.show=/tmp/ci/clone,/run/c ');
  });
});

describe('bzImage payload', () => {
  it('finds the compressed kernel and its uncompressed size by the boot protocol header', () => {
    const img = Buffer.alloc(4096);
    img[0x1f1] = 3; // setup_sects: protected-mode code at (3+1)*512
    img.writeUInt32LE(0x53726448, 0x202);
    const payload = Buffer.concat([Buffer.from('28b52ffd', 'hex'), Buffer.alloc(20), Buffer.from([0x10, 0x27, 0, 0])]);
    img.writeUInt32LE(100, 0x248);
    img.writeUInt32LE(payload.length, 0x24c);
    payload.copy(img, 2048 + 100);
    expect(bzImagePayload(img)).toMatchObject({ format: 'zstd', size: 10000 });
    expect(bzImagePayload(Buffer.alloc(4096))).toBeUndefined();
  });
});

describe('static busybox check', () => {
  it('tells a dynamic executable (node) from a static one (busybox-static)', () => {
    expect(hasInterpreter(readFileSync(process.execPath))).toBe(true);
    expect(hasInterpreter(Buffer.from('#!/bin/sh\n'))).toBe(false);
  });
});
