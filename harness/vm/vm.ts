import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { VxError } from '../errors.ts';
import { addFinalizer } from '../exec/finalizers.ts';
import { AgentClient, GuestHost } from './guest-host.ts';
import type { AgentResults } from './protocol.ts';
import { requireKernelFeatures, type KernelFeatures } from './features.ts';
import { buildInitramfs, GUEST_DIR } from './initramfs.ts';
import { resolveKernel, type CachedKernel } from './kernels.ts';
import { procStart } from '../exec/proc.ts';
export { procStart };
import { pvhVmlinux } from './vmlinux.ts';

/** Every VM's pid, sockets and console live here (under the runs' state dir); `downGuests()` reads it after a crash. */
export const VM_STATE_DIR = join(process.env.VXCHAOS_STATE_DIR ?? '/run/vxchaos', 'vm');

/** What a VM puts in the run's ledger: the same shapes as the ledger's own pid and path entries. */
export type VmResource = { kind: 'pid'; pid: number; start: string; what: string } | { kind: 'path'; path: string };

export const QEMU = 'qemu-system-x86_64';
/** qemu's process name and -name carry this prefix plus the VM id: how downGuests knows its own qemu. */
export const VM_NAME_PREFIX = 'vxc-vm-';

export type Accel = 'kvm' | 'tcg';

export interface QemuConfig {
  id: string;
  accel: Accel;
  cpus: number;
  memMiB: number;
  /** TCG translation cache; qemu 7.2's default is 1 GiB per VM. */
  tbSizeMiB: number;
  vmlinuz: string;
  initrd: string;
  cmdline: string;
  agentSocket: string;
  consoleLog: string;
  pidFile: string;
}

/** The qemu command line: no network device at all, the host root read-only over 9p, one virtio-serial port. */
export function qemuArgv(c: QemuConfig): string[] {
  const name = `${VM_NAME_PREFIX}${c.id}`;
  return [
    QEMU,
    '-name', `${name},process=${name}`,
    '-machine', 'q35',
    ...(c.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'] : ['-accel', `tcg,thread=multi,tb-size=${c.tbSizeMiB}`, '-cpu', 'max']),
    '-smp', String(c.cpus),
    '-m', String(c.memMiB),
    '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-monitor', 'none',
    // The guest reaches no network: not even qemu's user-mode NAT.
    '-nic', 'none',
    '-no-reboot',
    '-kernel', c.vmlinuz,
    '-initrd', c.initrd,
    '-append', c.cmdline,
    '-serial', `file:${c.consoleLog}`,
    '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    '-device', 'virtio-serial-pci,id=vser',
    '-chardev', `socket,id=agent,path=${c.agentSocket},server=on,wait=off`,
    '-device', 'virtserialport,bus=vser.0,chardev=agent,name=vxc.agent',
    '-pidfile', c.pidFile,
  ];
}

/** The guest kernel command line: console on the serial log, panics stop the VM, vxc.* for the initramfs. */
export function guestCmdline(p: { modulesRoot: string; config?: string; node: string; conntrackMax: number; conntrackHash: number; show?: readonly string[] }): string {
  // Host directories under /tmp or /run (a checkout, a cache) that must show through the guest's own tmpfs there.
  const show = (p.show ?? []).filter((d) => /^\/(tmp|run)\//.test(d));
  if (show.some((d) => d.includes(','))) throw new VxError('E_VM', `vxc.show=${show.join(',')}: a path under /tmp or /run with a comma cannot be shown to the guest`);
  const vxc: Record<string, string> = {
    ...(show.length ? { show: show.join(',') } : {}),
    mods: p.modulesRoot,
    ...(p.config ? { config: p.config } : {}),
    guestinit: join(GUEST_DIR, 'guest-init.sh'),
    node: p.node,
    agent: join(GUEST_DIR, 'agent.mjs'),
    ctmax: String(p.conntrackMax),
    cthash: String(p.conntrackHash),
  };
  for (const [k, v] of Object.entries(vxc)) {
    if (/[\s'"]/.test(v) || (k !== 'show' && v.includes(','))) throw new VxError('E_VM', `vxc.${k}=${v}: paths with spaces or quotes cannot go on the kernel command line`);
  }
  return ['console=ttyS0', 'quiet', 'loglevel=4', 'panic=-1', 'rdinit=/init', ...Object.entries(vxc).map(([k, v]) => `vxc.${k}=${v}`)].join(' ');
}

export function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const readNumber = (file: string): number | undefined => {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
};

/** What a VM leaves in its state dir for `downGuests()`. */
interface VmRecord {
  id: string;
  pid?: number;
  start?: string;
  agentSocket: string;
  kernel: string;
  startedAt: string;
}

export interface BootOptions {
  /** A `--kernel` spec (debian:bookworm, a .deb, a directory) or a kernel already resolved. */
  kernel: string | CachedKernel;
  /** auto: KVM when /dev/kvm is usable, else multi-threaded TCG. */
  accel?: Accel | 'auto';
  cpus?: number;
  memMiB?: number;
  tbSizeMiB?: number;
  bootTimeoutMs?: number;
  id?: string;
  /** Called the moment each resource exists (the run's ledger): qemu's pid, the VM's state dir. */
  record?: (r: VmResource) => void;
  log?: (line: string) => void;
}

export interface GuestKernel {
  release: string;
  /** `uname -v` in the guest. */
  version: string;
  /** Where it came from (debian:bookworm linux-image-… version, deb:/path, dir:/path). */
  source: string;
  spec: string;
  clocksource: string;
  features: KernelFeatures;
}

export interface Guest {
  host: GuestHost;
  kernel: GuestKernel;
  id: string;
  accel: Accel;
  pid: number;
  stateDir: string;
  /** From starting qemu to the agent's first answer. */
  bootMs: number;
  /** Powers the guest off (its overlay is guest memory: nothing remains), kills qemu if it hangs, removes the state dir. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function killQemu(pid: number, start: string | undefined, id: string): Promise<boolean> {
  if (!isOurQemu(pid, start, id)) return false;
  for (const [sig, waitMs] of [['SIGTERM', 5000], ['SIGKILL', 5000]] as const) {
    try {
      process.kill(pid, sig);
    } catch {
      return true;
    }
    for (let t = 0; t < waitMs; t += 50) {
      if (procStart(pid) !== start) return true;
      await sleep(50);
    }
  }
  return procStart(pid) !== start;
}

/** Only the qemu this harness started: same pid, same kernel start time, our VM name on its command line. */
export function isOurQemu(pid: number, start: string | undefined, id: string): boolean {
  if (start === undefined || procStart(pid) !== start) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`${VM_NAME_PREFIX}${id},process=${VM_NAME_PREFIX}${id}`);
  } catch {
    return false;
  }
}

function consoleTail(stateDir: string, lines = 25): string {
  const out: string[] = [];
  for (const f of ['console.log', 'qemu.log']) {
    try {
      const t = readFileSync(join(stateDir, f), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      if (t) out.push(`--- ${f}\n${t}`);
    } catch {
      /* not written */
    }
  }
  return out.join('\n');
}

/**
 * Boots a qemu guest on the given kernel and returns the netns provider's host inside it. The kernel is
 * refused before boot when it lacks what the suite needs. Registers a finalizer, so Ctrl-C stops the VM
 * after everything registered later (the provider's teardown through the guest) has run.
 */
export async function bootGuest(opts: BootOptions): Promise<Guest> {
  const log = opts.log ?? (() => undefined);
  const k = typeof opts.kernel === 'string' ? await resolveKernel(opts.kernel, log) : opts.kernel;
  if (!k) throw new VxError('E_VM', '--kernel host runs on this machine: there is no VM to boot');
  const features = requireKernelFeatures(k);
  const initrd = await buildInitramfs(k, log);
  if (opts.accel && opts.accel !== 'auto') return launch(k, features, initrd, opts.accel, opts, undefined);
  if (!kvmUsable()) return launch(k, features, initrd, 'tcg', opts, undefined);
  // A /dev/kvm that opens is not always one that runs a guest (nested virtualization): a guest whose
  // initramfs has not spoken within this time under KVM is retried under TCG.
  try {
    return await launch(k, features, initrd, 'kvm', opts, KVM_FIRST_WORD_MS);
  } catch (e) {
    if (!(e instanceof VxError) || e.code !== 'E_VM_KVM') throw e;
    log(`${e.message}; falling back to TCG`);
    return launch(k, features, initrd, 'tcg', opts, undefined);
  }
}

/** Under KVM the initramfs prints its first line within a second or two; this is generous. */
const KVM_FIRST_WORD_MS = 20_000;

async function launch(k: CachedKernel, features: KernelFeatures, initrd: string, accel: Accel, opts: BootOptions, firstWordMs: number | undefined): Promise<Guest> {
  const log = opts.log ?? (() => undefined);
  const id = opts.id && firstWordMs === undefined ? opts.id : randomBytes(4).toString('hex');
  const stateDir = join(VM_STATE_DIR, id);
  mkdirSync(stateDir, { recursive: true });
  opts.record?.({ kind: 'path', path: stateDir });
  const conntrackMax = readNumber('/proc/sys/net/netfilter/nf_conntrack_max') ?? 262_144;
  const cfg: QemuConfig = {
    id,
    accel,
    cpus: opts.cpus ?? 2,
    memMiB: opts.memMiB ?? 1024,
    tbSizeMiB: opts.tbSizeMiB ?? 256,
    vmlinuz: (await pvhVmlinux(k, log)) ?? k.vmlinuz,
    initrd,
    cmdline: guestCmdline({
      modulesRoot: join(k.root, 'lib', 'modules'),
      config: k.config,
      node: process.execPath,
      conntrackMax,
      conntrackHash: readNumber('/sys/module/nf_conntrack/parameters/hashsize') ?? Math.max(1024, conntrackMax / 4),
      // The checkout (probes, tracer, guest scripts) and the kernel cache, wherever they are on the host.
      show: [resolve(GUEST_DIR, '..', '..'), k.root],
    }),
    agentSocket: join(stateDir, 'agent.sock'),
    consoleLog: join(stateDir, 'console.log'),
    pidFile: join(stateDir, 'qemu.pid'),
  };
  const rec: VmRecord = { id, agentSocket: cfg.agentSocket, kernel: k.spec, startedAt: new Date().toISOString() };
  const writeRecord = () => writeFileSync(join(stateDir, 'vm.json'), `${JSON.stringify(rec, null, 2)}\n`);
  writeRecord();

  log(`vm ${id}: booting ${k.spec} (${k.release}) with ${accel.toUpperCase()}, ${cfg.cpus} vCPUs, ${cfg.memMiB} MiB`);
  const t0 = Date.now();
  const qemuLog = openSync(join(stateDir, 'qemu.log'), 'a');
  const [cmd, ...args] = qemuArgv(cfg);
  // Own process group: a Ctrl-C to the harness must not kill the VM before the teardown inside it has run.
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', qemuLog, qemuLog] });
  closeSync(qemuLog);
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = `qemu exited (${sig ?? `code ${code}`})`));
  child.unref();
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new VxError('E_VM', `cannot start ${QEMU}: ${e.message} (npm run setup -- --with vm)`)));
  });
  const pid = child.pid!;
  const start = procStart(pid);
  rec.pid = pid;
  rec.start = start;
  writeRecord();

  let client: AgentClient | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    removeFinalizer();
    if (client && !client.isClosed) await client.request({ op: 'poweroff' }, 3000).catch(() => undefined);
    for (let t = 0; t < 3000 && procStart(pid) === start; t += 50) await sleep(50);
    await killQemu(pid, start, id);
    client?.close();
    rmSync(stateDir, { recursive: true, force: true });
  };
  const removeFinalizer = addFinalizer(`vm ${id}`, stop);

  try {
    // After the finalizer: a ledger that refuses (the run was aborted meanwhile) still gets the VM stopped.
    opts.record?.({ kind: 'pid', pid, start: start ?? '', what: `qemu ${VM_NAME_PREFIX}${id}` });
    const bootTimeoutMs = opts.bootTimeoutMs ?? (accel === 'kvm' ? 60_000 : 180_000);
    const deadline = t0 + bootTimeoutMs;
    const fail = (why: string) => new VxError('E_VM_BOOT', `vm ${id} (${k.spec}, ${accel}): ${why}\n${consoleTail(stateDir)}`);
    const spoke = () => {
      try {
        return readFileSync(cfg.consoleLog, 'utf8').includes('vxc-init:');
      } catch {
        return false;
      }
    };
    const check = () => {
      if (exited) throw fail(exited);
      if (Date.now() > deadline) throw fail(`no answer from the guest agent within ${bootTimeoutMs} ms`);
      if (firstWordMs !== undefined && Date.now() > t0 + firstWordMs && !spoke()) {
        throw new VxError('E_VM_KVM', `vm ${id}: KVM guest showed no sign of life within ${firstWordMs} ms`);
      }
    };
    while (!client) {
      check();
      client = existsSync(cfg.agentSocket) ? await AgentClient.connect(cfg.agentSocket).catch(() => undefined) : undefined;
      if (!client) await sleep(50);
    }
    let hello: AgentResults['hello'] | undefined;
    // Pings until the agent answers: until it opens its port, qemu holds what we send.
    while (!hello) {
      check();
      hello = await client.request({ op: 'hello' }, 1000).catch((e: Error) => {
        if (client!.isClosed) throw fail(e.message);
        return undefined;
      });
    }
    const bootMs = Date.now() - t0;
    log(`vm ${id}: agent ready after ${(bootMs / 1000).toFixed(1)} s (${hello.release}, clocksource ${hello.clocksource})`);
    const kernel: GuestKernel = { release: hello.release, version: hello.version, source: k.source, spec: k.spec, clocksource: hello.clocksource, features };
    const host = new GuestHost(client, `qemu ${k.spec} ${hello.release} (${accel})`);
    return { host, kernel, id, accel, pid, stateDir, bootMs, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `vxchaos down --all`: kills every qemu a crashed run left (or only the VMs named in `only`) (by pid + start time + our VM name) and removes its state. */
export async function downGuests(opts: { only?: readonly string[]; log?: (l: string) => void } = {}): Promise<string[]> {
  const log = opts.log ?? (() => undefined);
  if (!existsSync(VM_STATE_DIR)) return [];
  const removed: string[] = [];
  for (const id of readdirSync(VM_STATE_DIR)) {
    if (opts.only && !opts.only.includes(id)) continue;
    const dir = join(VM_STATE_DIR, id);
    let rec: Partial<VmRecord> = {};
    try {
      rec = JSON.parse(readFileSync(join(dir, 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      /* cut by a crash: the pidfile may still say */
    }
    const pid = rec.pid ?? readNumber(join(dir, 'qemu.pid'));
    if (pid !== undefined) {
      // Without a recorded start time, the pidfile's pid counts only if its command line names this VM.
      const start = rec.start ?? procStart(pid);
      if (await killQemu(pid, start, id)) log(`vm ${id}: killed qemu ${pid}`);
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(id);
  }
  return removed;
}
