import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, openSync, closeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { checkAborted } from './finalizers.ts';
import { cleanupShell, type Shell } from './shell.ts';

/** Where runs keep their state (tmpfs): ledgers, generated configs, CNI IPAM data, daemon logs. */
export const STATE_DIR = process.env.VXCHAOS_STATE_DIR ?? '/run/vxchaos';
/** Every namespace a run creates starts with this, then the run id. */
export const NETNS_PREFIX = 'vxc-';

export type Resource =
  | { kind: 'netns'; name: string }
  | { kind: 'pid'; pid: number; start: string; what: string }
  | { kind: 'path'; path: string };

/** The kernel's start time of a process (field 22 of /proc/PID/stat): PIDs are reused, start times are not. */
export function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Everything a run creates is appended here (and fsynced) before or the moment it is created, so that a
 * crash, Ctrl-C or SIGTERM can always be cleaned up — by this process or later by `vxchaos down --all`.
 */
export class Ledger {
  readonly dir: string;
  private readonly file: string;
  private readonly entries: Resource[] = [];
  private tornDown = false;

  constructor(readonly runId: string) {
    this.dir = join(STATE_DIR, runId);
    this.file = join(this.dir, 'ledger.jsonl');
    mkdirSync(this.dir, { recursive: true });
    this.record({ kind: 'path', path: this.dir });
  }

  record(r: Resource): void {
    checkAborted();
    this.entries.push(r);
    appendFileSync(this.file, `${JSON.stringify(r)}\n`);
    const fd = openSync(this.file, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Removes everything, newest first. Safe to call twice and after a partial failure. */
  async teardown(sh: Shell = cleanupShell): Promise<string[]> {
    if (this.tornDown) return [];
    this.tornDown = true;
    return teardownEntries(this.entries, sh);
  }

  static load(runId: string): Resource[] {
    const file = join(STATE_DIR, runId, 'ledger.jsonl');
    if (!existsSync(file)) return [{ kind: 'path', path: join(STATE_DIR, runId) }];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Resource];
        } catch {
          return []; // a line cut by a crash
        }
      });
  }

  static runs(): string[] {
    return existsSync(STATE_DIR) ? readdirSync(STATE_DIR) : [];
  }
}

async function killPid(pid: number, start: string | undefined): Promise<boolean> {
  // Only a process that is still the one we started (same start time).
  if (start !== undefined && procStart(pid) !== start) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  for (let i = 0; i < 40; i++) {
    if (procStart(pid) === undefined) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  return true;
}

/** Processes inside a namespace the run created are the run's own (probes, servers, caches). */
async function killNetnsPids(name: string, sh: Shell): Promise<void> {
  const r = await sh(['ip', 'netns', 'pids', name], { nothrow: true, timeoutMs: 5000 });
  const pids = r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 1 && p !== process.pid);
  await Promise.all(pids.map((p) => killPid(p, procStart(p))));
}

async function teardownEntries(entries: readonly Resource[], sh: Shell): Promise<string[]> {
  const problems: string[] = [];
  const netns = entries.filter((e): e is Extract<Resource, { kind: 'netns' }> => e.kind === 'netns');
  // Processes first (they hold namespaces alive), then namespaces, then files.
  for (const e of [...entries].reverse()) {
    if (e.kind === 'pid') await killPid(e.pid, e.start);
  }
  await Promise.all(netns.map((n) => killNetnsPids(n.name, sh)));
  for (const n of [...netns].reverse()) {
    const r = await sh(['ip', 'netns', 'del', n.name], { nothrow: true, timeoutMs: 10_000 });
    if (r.exitCode !== 0 && !/No such file|Invalid argument|Cannot remove namespace file/.test(r.stderr)) {
      problems.push(`ip netns del ${n.name}: ${r.stderr.trim()}`);
    }
  }
  for (const n of netns) rmSync(`/etc/netns/${n.name}`, { recursive: true, force: true });
  for (const e of [...entries].reverse()) {
    if (e.kind === 'path') rmSync(e.path, { recursive: true, force: true });
  }
  return problems;
}

/** `vxchaos down --all`: the ledgers of every run, plus any vxc-* namespace a ledger missed. */
export async function downAll(sh: Shell = cleanupShell, onlyRun?: string): Promise<{ runs: string[]; namespaces: string[]; problems: string[] }> {
  const runs = onlyRun ? [onlyRun] : Ledger.runs();
  const problems: string[] = [];
  for (const run of runs) problems.push(...(await teardownEntries(Ledger.load(run), sh)));
  const list = await sh(['ip', 'netns', 'list'], { nothrow: true, timeoutMs: 5000 });
  const prefix = onlyRun ? `${NETNS_PREFIX}${onlyRun}-` : NETNS_PREFIX;
  const stray = list.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
  problems.push(...(await teardownEntries(stray.map((name) => ({ kind: 'netns', name })), sh)));
  return { runs, namespaces: stray, problems };
}
