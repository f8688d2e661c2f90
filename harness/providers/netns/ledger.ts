import { join } from 'node:path';
import { checkAborted } from '../../exec/finalizers.ts';
import type { Host } from './host.ts';
import { LocalHost } from './local-host.ts';

/** Where runs keep their state on the host (tmpfs): ledgers, generated configs, CNI IPAM data, daemon logs. */
export const STATE_DIR = process.env.VXCHAOS_STATE_DIR ?? '/run/vxchaos';
/** Every namespace a run creates starts with this, then the run id. */
export const NETNS_PREFIX = 'vxc-';

export type Resource =
  | { kind: 'netns'; name: string }
  | { kind: 'pid'; pid: number; start: string; what: string }
  | { kind: 'path'; path: string };

const cleanupHostOf = (host: Host): Host => host.forCleanup?.() ?? host;

/**
 * Everything a run creates is appended here (and flushed) before or the moment it is created, so that a
 * crash, Ctrl-C or SIGTERM can always be cleaned up — by this process or later by `vxchaos down --all`.
 * The file lives on the host, next to what it lists, and every access goes through the Host.
 */
export class Ledger {
  readonly dir: string;
  private readonly file: string;
  private readonly entries: Resource[] = [];
  private tornDown = false;
  // Appends one after another: concurrent node work records concurrently, the file stays in order.
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly host: Host,
    readonly runId: string,
  ) {
    this.dir = join(STATE_DIR, runId);
    this.file = join(this.dir, 'ledger.jsonl');
  }

  /** The run's ledger (created, or appended to when the run already has one). */
  static async open(host: Host, runId: string): Promise<Ledger> {
    const l = new Ledger(host, runId);
    await host.mkdir(l.dir);
    await l.record({ kind: 'path', path: l.dir });
    return l;
  }

  /** Refuses once the run is aborted; resolves when the lines are on disk (one write for all of them). */
  record(...rs: Resource[]): Promise<void> {
    checkAborted();
    this.entries.push(...rs);
    const lines = rs.map((r) => `${JSON.stringify(r)}\n`).join('');
    const p = this.writing.then(() => append(this.host, this.file, lines));
    this.writing = p.catch(() => undefined);
    return p;
  }

  /** Removes everything, newest first. Safe to call twice and after a partial failure. */
  async teardown(): Promise<string[]> {
    if (this.tornDown) return [];
    this.tornDown = true;
    await this.writing;
    return teardownEntries(this.entries, cleanupHostOf(this.host));
  }

  static async load(host: Host, runId: string): Promise<Resource[]> {
    let text: string;
    try {
      text = await host.readFile(join(STATE_DIR, runId, 'ledger.jsonl'));
    } catch {
      return [{ kind: 'path', path: join(STATE_DIR, runId) }];
    }
    return text
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

  /** Run ids with a ledger on the host (other directories under STATE_DIR are not runs: left alone). */
  static async runs(host: Host): Promise<string[]> {
    const r = await host.run(['find', STATE_DIR, '-mindepth', '2', '-maxdepth', '2', '-name', 'ledger.jsonl', '-printf', '%P\\n'], { nothrow: true, timeoutMs: 5000 });
    return r.stdout.split('\n').filter(Boolean).map((p) => p.split('/')[0]!).sort();
  }
}

async function append(host: Host, file: string, line: string): Promise<void> {
  if (host.appendFile) return host.appendFile(file, line);
  await host.run(['sh', '-c', 'cat >> "$1" && sync "$1"', 'ledger', file], { input: line, timeoutMs: 5000 });
}

async function killPid(host: Host, pid: number, start: string | undefined): Promise<boolean> {
  // Only a process that is still the one we started (same start time).
  if (start !== undefined && (await host.procStart(pid)) !== start) return false;
  if (!(await host.kill(pid, 'SIGTERM'))) return false;
  for (let i = 0; i < 40; i++) {
    if ((await host.procStart(pid)) === undefined) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  await host.kill(pid, 'SIGKILL');
  return true;
}

/**
 * Runs `ip -force -batch` (every line, even after a failing one) and returns the error of each failed line
 * by its 1-based number: iproute2 prints the error, then "Command failed -:N".
 */
async function ipForceBatch(host: Host, lines: readonly string[]): Promise<{ stdout: string; failed: Map<number, string> }> {
  const failed = new Map<number, string>();
  if (lines.length === 0) return { stdout: '', failed };
  const r = await host.run(['ip', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, nothrow: true, timeoutMs: 10_000 + 100 * lines.length });
  let why: string[] = [];
  for (const l of r.stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(l);
    if (m) {
      failed.set(Number(m[1]), why.join(' ').trim());
      why = [];
    } else if (l.trim()) why.push(l.trim());
  }
  return { stdout: r.stdout, failed };
}

/** Processes inside the namespaces the run created are the run's own (probes, servers, caches): one `ip` lists them all. */
async function killNetnsPids(host: Host, names: readonly string[]): Promise<void> {
  const { stdout } = await ipForceBatch(host, names.map((n) => `netns pids ${n}`));
  const pids = [...new Set(stdout.split(/\s+/).filter(Boolean).map(Number))].filter((p) => p > 1);
  await Promise.all(pids.map(async (p) => killPid(host, p, await host.procStart(p))));
}

async function teardownEntries(entries: readonly Resource[], host: Host): Promise<string[]> {
  const problems: string[] = [];
  const netns = entries.filter((e): e is Extract<Resource, { kind: 'netns' }> => e.kind === 'netns').map((e) => e.name);
  // Processes first (they hold namespaces alive; each one waited for, all at once), then namespaces, then files.
  await Promise.all(entries.map((e) => (e.kind === 'pid' ? killPid(host, e.pid, e.start) : undefined)));
  await killNetnsPids(host, netns);
  const del = [...netns].reverse();
  const { failed } = await ipForceBatch(host, del.map((n) => `netns del ${n}`));
  for (const [line, why] of failed) {
    if (!/No such file|Invalid argument|Cannot remove namespace file/.test(why)) problems.push(`ip netns del ${del[line - 1]}: ${why}`);
  }
  await Promise.all(netns.map((n) => host.remove(`/etc/netns/${n}`)));
  for (const e of [...entries].reverse()) {
    if (e.kind === 'path') await host.remove(e.path);
  }
  return problems;
}

/** Whether a cluster's run id belongs to a run: the run's own, or one of its clusters side by side (`<run>.<n>`). */
export function ofRun(clusterRunId: string, runId: string): boolean {
  return clusterRunId === runId || clusterRunId.startsWith(`${runId}.`);
}

/** The host's vxc-* namespaces, by name: all, or a run's (its lanes' too). */
export async function runNamespaces(host: Host, runId?: string): Promise<string[]> {
  const list = await host.run(['ip', 'netns', 'list'], { nothrow: true, timeoutMs: 5000 });
  const prefixes = runId ? [`${NETNS_PREFIX}${runId}-`, `${NETNS_PREFIX}${runId}.`] : [NETNS_PREFIX];
  return list.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => prefixes.some((p) => n.startsWith(p)));
}

/**
 * The run a namespace belongs to: the longest known run id it is named after (run ids may contain '-',
 * e.g. the bench's), else the text up to the next '-'.
 */
export function runOfNamespace(name: string, knownRuns: readonly string[]): string {
  const rest = name.slice(NETNS_PREFIX.length);
  const known = [...knownRuns].sort((a, b) => b.length - a.length).find((r) => rest.startsWith(`${r}-`));
  return known ?? rest.split('-')[0]!;
}

export interface RunLeftovers {
  runId: string;
  ledger: boolean;
  namespaces: string[];
  /** Recorded processes that are still the ones the run started. */
  processes: number;
}

/** What is left on the host of each run: its ledger, live processes and namespaces (stray ones too). */
export async function leftovers(host: Host): Promise<RunLeftovers[]> {
  const runs = await Ledger.runs(host);
  const byRun = new Map<string, RunLeftovers>();
  for (const runId of runs) {
    let processes = 0;
    for (const e of await Ledger.load(host, runId)) {
      if (e.kind === 'pid' && (await host.procStart(e.pid)) === e.start) processes++;
    }
    byRun.set(runId, { runId, ledger: true, namespaces: [], processes });
  }
  for (const ns of await runNamespaces(host)) {
    const runId = runOfNamespace(ns, runs);
    const entry = byRun.get(runId) ?? { runId, ledger: false, namespaces: [], processes: 0 };
    entry.namespaces.push(ns);
    byRun.set(runId, entry);
  }
  return [...byRun.values()];
}

/**
 * Removes one run (or, without a run id, every run's ledger plus any vxc-* namespace a ledger missed).
 * The teardown `vxchaos down` and each run's own cleanup use; it works with no process of the run alive.
 */
export async function downAll(host: Host = new LocalHost(), onlyRun?: string): Promise<{ runs: string[]; namespaces: string[]; problems: string[] }> {
  const h = cleanupHostOf(host);
  const existing = await Ledger.runs(h);
  // A named run is torn down even without a state dir (a crash before the first write), with its lanes' clusters;
  // runs lists what existed.
  const runs = onlyRun ? existing.filter((r) => ofRun(r, onlyRun)) : existing;
  const problems: string[] = [];
  for (const run of onlyRun ? [...new Set([onlyRun, ...runs])] : runs) problems.push(...(await teardownEntries(await Ledger.load(h, run), h)));
  const stray = await runNamespaces(h, onlyRun);
  problems.push(...(await teardownEntries(stray.map((name) => ({ kind: 'netns', name })), h)));
  return { runs, namespaces: stray, problems };
}
