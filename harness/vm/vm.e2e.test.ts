import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from '../doctor.ts';
import { runFinalizers } from '../exec/finalizers.ts';
import { shell } from '../exec/shell.ts';
import { bootGuest, downGuests, procStart, VM_STATE_DIR, type Guest, type VmResource } from './vm.ts';

const KERNEL = 'debian:bookworm';
const BOOT_MS = 240_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(pid: number, start: string | undefined, ms = 10_000): Promise<boolean> {
  for (let t = 0; t < ms; t += 100) {
    if (procStart(pid) !== start) return true;
    await sleep(100);
  }
  return false;
}

describe.skipIf(!isRoot())(`a ${KERNEL} guest under TCG through GuestHost (needs root, qemu)`, () => {
  let guest: Guest;
  const records: VmResource[] = [];

  beforeAll(async () => {
    guest = await bootGuest({ kernel: KERNEL, accel: 'tcg', record: (r) => records.push(r) });
  }, BOOT_MS);

  afterAll(async () => {
    await guest?.stop();
  }, 30_000);

  it('runs the guest kernel, not the host one, and says where it came from', async () => {
    const r = await guest.host.run(['uname', '-r']);
    expect(r.stdout.trim()).toBe(guest.kernel.release);
    expect(guest.kernel.release).toMatch(/^6\.1\.\d+-\d+-amd64$/);
    expect(guest.kernel.source).toMatch(/^debian:bookworm linux-image-6\.1\.\S+-amd64 6\.1\./);
    expect(guest.kernel.version).toMatch(/Debian 6\.1\./);
    expect(guest.kernel.clocksource).not.toBe('');
    expect(guest.kernel.features.dropReasons).toBe(true);
    expect(records.map((r) => r.kind).sort()).toEqual(['path', 'pid']);
  });

  it('creates a namespace inside the guest that the host never sees, and runs a batch in it', async () => {
    const ns = `vxc-vmtest-${guest.id}`;
    await guest.host.run(['ip', 'netns', 'add', ns]);
    const [, link] = await guest.host.runMany!([
      { argv: ['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'] },
      { argv: ['ip', 'netns', 'exec', ns, 'ip', '-j', 'link'] },
    ]);
    expect(JSON.parse(link!.stdout)).toMatchObject([{ ifname: 'lo', operstate: 'UNKNOWN' }]);
    expect((await shell(['ip', 'netns', 'list'])).stdout).not.toContain(ns);
    // A failing command in a batch throws with its own argv.
    await expect(guest.host.runMany!([{ argv: ['true'] }, { argv: ['ip', 'netns', 'exec', 'vxc-no-such', 'true'] }])).rejects.toThrow(/vxc-no-such/);
  });

  it('writes files in the private overlay only, reads them back, removes them', async () => {
    const dir = `/etc/vxc-vmtest-${guest.id}`;
    await guest.host.mkdir(dir);
    await guest.host.writeFile(`${dir}/resolv.conf`, 'nameserver 10.96.0.10\noptions ndots:5\n');
    expect(await guest.host.readFile(`${dir}/resolv.conf`)).toBe('nameserver 10.96.0.10\noptions ndots:5\n');
    expect(existsSync(dir)).toBe(false);
    await guest.host.remove(dir);
    expect(await guest.host.exists(dir)).toBe(false);
    await expect(guest.host.readFile(`${dir}/resolv.conf`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('bounds commands by their timeout and reports non-zero exits', async () => {
    await expect(guest.host.run(['sleep', '10'], { timeoutMs: 500 })).rejects.toThrow(/timed out/);
    await expect(guest.host.run(['sh', '-c', 'echo oops >&2; exit 3'])).rejects.toMatchObject({ status: 3, stderr: 'oops\n' });
    expect((await guest.host.run(['cat'], { input: 'to stdin' })).stdout).toBe('to stdin');
  });

  it('spawns a detached daemon with a log, knows its start time, kills it', async () => {
    const log = `/tmp/vxc-daemon-${guest.id}.log`;
    const p = await guest.host.spawn(['sh', '-c', 'echo started; exec sleep 300'], { log });
    expect(p.exitedAtOnce).toBeUndefined();
    expect(await guest.host.procStart(p.pid)).toBe(p.start);
    expect(await guest.host.kill(p.pid, 'SIGTERM')).toBe(true);
    let start: string | undefined = p.start;
    for (let t = 0; t < 50 && start; t++) {
      await sleep(100);
      start = await guest.host.procStart(p.pid);
    }
    expect(start).toBeUndefined();
    expect(await guest.host.readFile(log)).toBe('started\n');
    const bad = await guest.host.spawn(['sh', '-c', 'exit 7'], { log });
    // "At once" is a settle time; on a loaded TCG host the exit may come later, but it must come.
    if (bad.exitedAtOnce === undefined) {
      for (let t = 0; t < 50 && (await guest.host.procStart(bad.pid)); t++) await sleep(100);
      expect(await guest.host.procStart(bad.pid)).toBeUndefined();
    } else expect(bad.exitedAtOnce).toBe(7);
  });

  it('stops on the run finalizers (the Ctrl-C / SIGTERM path): qemu gone, state dir and socket gone', async () => {
    const { pid, stateDir } = guest;
    const start = procStart(pid);
    expect(start).toBeDefined();
    await runFinalizers();
    expect(await gone(pid, start)).toBe(true);
    expect(existsSync(stateDir)).toBe(false);
  }, 30_000);
});

/** Starts a harness process that boots a guest; resolves once the guest is up. */
async function bootChild(...flags: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'testdata', 'boot-child.ts'), KERNEL, ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`boot child exited (${c}) before the guest was up`)));
  });
  return { child, vm: JSON.parse(line) as { id: string; pid: number; stateDir: string } };
}

describe.skipIf(!isRoot())('an interrupted harness leaves no VM behind (needs root, qemu)', () => {
  it('SIGTERM: the harness finalizers power the guest off and remove its state', async () => {
    const { child, vm } = await bootChild('--signals');
    try {
      const qemuStart = procStart(vm.pid);
      expect(qemuStart).toBeDefined();
      child.kill('SIGTERM');
      const code = child.exitCode ?? (await new Promise((r) => child.once('exit', (c) => r(c))));
      expect(code).toBe(143);
      expect(await gone(vm.pid, qemuStart)).toBe(true);
      expect(existsSync(vm.stateDir)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  }, BOOT_MS);

  it('crash (SIGKILL) + downGuests: kills only its own qemu, removes overlay state and socket', async () => {
    // A process that is not our qemu, recorded as if it were: downGuests must leave it alone.
    const decoy = spawn('sleep', ['120'], { stdio: 'ignore' });
    const decoyStart = procStart(decoy.pid!);
    const decoyDir = join(VM_STATE_DIR, `decoy${process.pid}`);
    mkdirSync(decoyDir, { recursive: true });
    writeFileSync(join(decoyDir, 'vm.json'), JSON.stringify({ id: `decoy${process.pid}`, pid: decoy.pid, start: decoyStart }));

    const { child, vm } = await bootChild();
    try {
      const qemuStart = procStart(vm.pid);
      expect(existsSync(join(vm.stateDir, 'agent.sock'))).toBe(true);

      child.kill('SIGKILL'); // a crash: no finalizer runs
      await new Promise((r) => child.once('exit', r));
      expect(procStart(vm.pid)).toBe(qemuStart); // the orphaned VM is still there…

      const removed = await downGuests({ only: [vm.id, `decoy${process.pid}`] });
      expect(removed.sort()).toEqual([vm.id, `decoy${process.pid}`].sort());
      expect(await gone(vm.pid, qemuStart)).toBe(true); // …until down
      expect(existsSync(vm.stateDir)).toBe(false);
      expect(procStart(decoy.pid!)).toBe(decoyStart);
      const qemus = await shell(['pgrep', '-f', `vxc-vm-${vm.id}`], { nothrow: true });
      expect(qemus.stdout.trim()).toBe('');
    } finally {
      child.kill('SIGKILL');
      decoy.kill('SIGKILL');
    }
  }, BOOT_MS);
});
