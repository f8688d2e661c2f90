import { VxError } from '../errors.ts';
import type { ExecOptions, ExecResult } from '../exec/shell.ts';
import type { Host } from '../exec/host.ts';

/**
 * Where packets died: the TypeScript side of images/droptracer (build/vxdrops), a BPF program on
 * tp_btf/kfree_skb that counts the drops of the run's own network namespaces. The tracer runs once per
 * run; the runner samples it before and after a cell's measurement and keeps the difference.
 */

/** One aggregated drop counter: where (namespace, interface, kernel function), why (reason) and what (protocol, port). */
export interface DropRow {
  /** Network namespace inode (`stat -L -c %i /run/netns/NAME`). */
  netnsInode: number;
  /** The run's name for the namespace (node-3, client-musl, fabric), as given to watch(); the inode when unnamed. */
  ns: string;
  /** Interface the skb was on (skb->dev, captured in the kernel); '' when the namespace came from the socket. */
  iface: string;
  /** enum skb_drop_reason without its SKB_DROP_REASON_ prefix, named by the running kernel's BTF; 'n/a' before 5.17. */
  reason: string;
  /** Kernel function that freed the skb (the tracepoint's location through /proc/kallsyms), or its hex address. */
  func: string;
  /** 'ipv4', 'ipv6', 'arp', an ethertype as 0x…, or '' when unknown. */
  l3: string;
  /** 'udp', 'tcp', 'icmp', 'icmpv6', …; '' for non-IP. */
  proto: string;
  /** The service side of the flow (see images/droptracer/README.md: privileged, else VXLAN, else dst < 32768, else src < 32768); 0 when both are ephemeral. */
  port: number;
  /** For VXLAN (UDP 8472/4789): the encapsulated packet's protocol and port. */
  innerProto?: string;
  innerPort?: number;
  /** Destination is multicast (224/4, ff00::/8). */
  multicast?: boolean;
  /** 'sock' when skb->dev gave no namespace and the socket's was used. */
  via?: 'dev' | 'sock';
  count: number;
}

/** The additive `drops` field of a matrix cell. */
export interface Drops {
  available: boolean;
  /** Why drops are unavailable (no BTF, not root, build failed, …). */
  why?: string;
  /** Sum of all rows' counts. */
  total: number;
  rows: DropRow[];
  /** False on kernels before 5.17: rows carry no reason ('n/a'), so no cause can be checked. */
  reasons?: boolean;
}

/** A row's identity without its count and namespace name: the key of a snapshot. */
export type DropKey = string;
/** Cumulative counts since the tracer started, by key. */
export type DropSnapshot = Map<DropKey, number>;

type Identity = [netns: number, iface: string, reason: string, func: string, l3: string, proto: string, port: number, innerL3: string, innerProto: string, innerPort: number, mcast: boolean, via: string];

/** The tracer's snapshot header: totals over every namespace, for diagnostics. */
export interface DropStats {
  seq: number;
  /** kfree_skb events the program saw on the whole machine. */
  seen: number;
  /** Drops with no namespace (neither skb->dev nor a socket). */
  unattributed: number;
  /** Drops lost because the key map was full. */
  overflow: number;
  /** Whether this kernel's tracepoint carries drop reasons (5.17+). */
  reasons: boolean;
  watched: number[];
  /** With `stats`: the program's total run time (ns) and runs, from the kernel's BPF accounting. */
  runNs?: number;
  runCnt?: number;
}

export class DropsUnavailableError extends VxError {
  readonly why: string;
  constructor(why: string) {
    super('E_DROPS_UNAVAILABLE', `drops: unavailable (${why})`);
    this.name = 'DropsUnavailableError';
    this.why = why;
  }
}

export class DropTracerError extends VxError {
  constructor(message: string) {
    super('E_DROP_TRACER', message);
    this.name = 'DropTracerError';
  }
}

/** What the tracer needs from the machine it runs on: the netns provider's Host satisfies it. */
export type DropHost = Pick<Host, 'spawn' | 'kill' | 'readFile' | 'writeFile' | 'mkdir' | 'procStart'>;

export interface DropTracerOptions {
  /** Path of build/vxdrops on the host. */
  binary: string;
  /** A directory on the host for the tracer's watch list, snapshot and log (e.g. the run's state dir). */
  dir: string;
  /** The tracer exits when this PID does (the harness, when the host is local): no orphan after a crash. */
  exitWith?: number;
  /** Bound on attaching (default 15 s: loading BTF and verifying the program). */
  readyTimeoutMs?: number;
  /** Turn on the kernel's BPF run-time accounting (machine-wide while the tracer runs: for the bench only). */
  stats?: boolean;
  /** Tests: attach with an older kernel's tracepoint signature (2: before 5.17, no reason; 3: before 6.11, no rx_sk). */
  tracepointArgs?: 2 | 3;
  /** Bound on one snapshot round trip (default 10 s). */
  snapshotTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* a line still being written, or libbpf's stderr */
    }
  }
  return out;
}

export function dropKey(r: Omit<DropRow, 'ns' | 'count'> & { innerL3?: string }): DropKey {
  const id: Identity = [r.netnsInode, r.iface, r.reason, r.func, r.l3, r.proto, r.port, r.innerL3 ?? '', r.innerProto ?? '', r.innerPort ?? 0, !!r.multicast, r.via ?? 'dev'];
  return JSON.stringify(id);
}

function rowOf(key: DropKey, count: number, names: ReadonlyMap<number, string>): DropRow {
  const [netns, iface, reason, func, l3, proto, port, innerL3, innerProto, innerPort, mcast, via] = JSON.parse(key) as Identity;
  const row: DropRow = { netnsInode: netns, ns: names.get(netns) ?? String(netns), iface, reason, func, l3, proto, port, count };
  if (innerL3) {
    row.innerProto = innerProto || innerL3;
    row.innerPort = innerPort;
  }
  if (mcast) row.multicast = true;
  if (via === 'sock') row.via = 'sock';
  return row;
}

/** Parses one snapshot (vxdrops's JSON lines); undefined while it is incomplete. */
export function parseSnapshot(text: string): { stats: DropStats; counts: DropSnapshot } | undefined {
  const lines = jsonLines(text);
  const head = lines.find((l) => typeof l.snapshot === 'number');
  if (!head) return undefined;
  const seq = head.snapshot as number;
  if (!lines.some((l) => l.end === seq)) return undefined;
  const counts: DropSnapshot = new Map();
  for (const l of lines) {
    if (typeof l.netns !== 'number' || typeof l.count !== 'number') continue;
    const key = dropKey({
      netnsInode: l.netns,
      iface: String(l.iface ?? ''),
      reason: typeof l.reason === 'string' ? l.reason : 'n/a',
      func: String(l.func ?? ''),
      l3: String(l.l3 ?? ''),
      proto: String(l.proto ?? ''),
      port: Number(l.port ?? 0),
      innerL3: l.inner_l3 === undefined ? undefined : String(l.inner_l3),
      innerProto: l.inner_proto === undefined ? undefined : String(l.inner_proto),
      innerPort: l.inner_port === undefined ? undefined : Number(l.inner_port),
      multicast: l.mcast === true,
      via: l.via === 'sock' ? 'sock' : 'dev',
    });
    // Several kernel locations inside one function are one row.
    counts.set(key, (counts.get(key) ?? 0) + l.count);
  }
  const stats: DropStats = {
    seq,
    seen: Number(head.seen ?? 0),
    unattributed: Number(head.unattributed ?? 0),
    overflow: Number(head.overflow ?? 0),
    reasons: head.reasons === true,
    watched: Array.isArray(head.watched) ? (head.watched as number[]) : [],
  };
  if (typeof head.run_ns === 'number' && typeof head.run_cnt === 'number') {
    stats.runNs = head.run_ns;
    stats.runCnt = head.run_cnt;
  }
  return { stats, counts };
}

/** Counters that grew between two snapshots, largest first. */
export function deltaRows(before: DropSnapshot, after: DropSnapshot, names: ReadonlyMap<number, string> = new Map()): DropRow[] {
  const rows: DropRow[] = [];
  for (const [key, n] of after) {
    const d = n - (before.get(key) ?? 0);
    if (d > 0) rows.push(rowOf(key, d, names));
  }
  return rows.sort((a, b) => b.count - a.count);
}

/** A cell's `drops` field from its rows. */
export function dropsOf(rows: DropRow[]): Drops {
  return { available: true, total: rows.reduce((s, r) => s + r.count, 0), rows };
}

export function dropsUnavailable(why: string): Drops {
  return { available: false, why, total: 0, rows: [] };
}

/**
 * Background noise every run has, named so a report can sink it (issue 11): IPv6 multicast (MLD, router
 * solicitations on new links), TCP teardown, a closed socket's purged queue (use-vc), and the late answers
 * musl receives after it took the first nameserver's.
 */
export function backgroundLabel(row: DropRow): string | undefined {
  if (row.multicast && row.l3 === 'ipv6') return 'IPv6 multicast';
  if (row.reason === 'TCP_CLOSE' || (row.reason === 'NO_SOCKET' && row.proto === 'tcp')) return 'TCP teardown';
  // A segment to a TIME_WAIT socket ends at tcp_v4_rcv's discard with no reason set (every connect workload has them).
  if (row.reason === 'NOT_SPECIFIED' && row.proto === 'tcp' && /^tcp_v[46]_rcv$/.test(row.func)) return 'TCP teardown (TIME_WAIT)';
  if (row.reason === 'QUEUE_PURGE') return 'socket closed with data queued';
  if (row.reason === 'NO_SOCKET' && row.proto === 'udp' && row.port === 53) return 'late DNS answer (socket already closed)';
  // glibc's resolver asks nscd over a unix socket first; with no nscd the connect's skb is freed (no network packet).
  if (/^unix_/.test(row.func)) return 'AF_UNIX (nscd probe)';
  return undefined;
}

export function isBackground(row: DropRow): boolean {
  return backgroundLabel(row) !== undefined;
}

export interface RankedDropRow extends DropRow {
  /** count minus the same row's count in the baseline cell (same client, no fault); may be negative. */
  excess: number;
  background?: string;
}

/** Identity across cells of one run: names, not inodes, so a baseline from another tracer or run still lines up. */
const placeKey = (r: DropRow) => JSON.stringify([r.ns, r.iface, r.reason, r.func, r.l3, r.proto, r.port, r.innerProto ?? '', r.innerPort ?? 0, !!r.multicast]);

/**
 * Ranks a cell's rows by their excess over the baseline cell (the same client's no-fault cell): rows that
 * are not background and exceed the baseline come first, by excess; what the baseline also had sinks.
 */
export function rankByExcess(cellRows: readonly DropRow[], baselineRows: readonly DropRow[]): RankedDropRow[] {
  const base = new Map<string, number>();
  for (const r of baselineRows) base.set(placeKey(r), (base.get(placeKey(r)) ?? 0) + r.count);
  const ranked = cellRows.map((r): RankedDropRow => {
    const out: RankedDropRow = { ...r, excess: r.count - (base.get(placeKey(r)) ?? 0) };
    const bg = backgroundLabel(r);
    if (bg) out.background = bg;
    return out;
  });
  const tier = (r: RankedDropRow) => (r.excess > 0 && !r.background ? 0 : r.excess > 0 ? 1 : 2);
  return ranked.sort((a, b) => tier(a) - tier(b) || b.excess - a.excess || b.count - a.count);
}

type RunHost = { run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> };

/** The inode of a named network namespace, for watch(). */
export async function netnsInode(host: RunHost, netns: string): Promise<number> {
  return (await netnsInodes(host, [netns]))[0]!;
}

/** The inodes of named network namespaces, in their order: one `stat` for all of them. */
export async function netnsInodes(host: RunHost, names: readonly string[]): Promise<number[]> {
  if (names.length === 0) return [];
  const r = await host.run(['stat', '-L', '-c', '%i', ...names.map((n) => `/run/netns/${n}`)], { timeoutMs: 5_000 });
  const lines = r.stdout.trim().split('\n');
  return names.map((netns, i) => {
    const ino = Number(lines[i]?.trim());
    if (!Number.isSafeInteger(ino) || ino <= 0) throw new DropTracerError(`no inode for netns ${netns}: ${lines[i]?.trim() ?? 'no line'}`);
    return ino;
  });
}

/**
 * A running vxdrops. Started once per run; watch() each namespace the run creates (unwatch() before it is
 * deleted: inodes are reused); snapshot() before and after a cell; delta() of the two is the cell's drops.
 */
export class DropTracer {
  readonly pid: number;
  readonly kernelHasReasons: boolean;
  private readonly names = new Map<number, string>();
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Header of the last snapshot: machine-wide totals, watched set. */
  lastStats?: DropStats;

  private constructor(
    private readonly host: DropHost,
    private readonly opts: DropTracerOptions,
    private readonly start: string,
    ready: Record<string, unknown>,
  ) {
    this.pid = Number(ready.pid);
    this.kernelHasReasons = ready.reasons === true;
  }

  private get watchFile() {
    return `${this.opts.dir}/vxdrops.watch`;
  }
  private get outFile() {
    return `${this.opts.dir}/vxdrops.snapshot`;
  }
  static logFile(dir: string) {
    return `${dir}/vxdrops.log`;
  }

  /** Starts and attaches the tracer; throws DropsUnavailableError with the reason when it cannot run here. */
  static async start(host: DropHost, opts: DropTracerOptions): Promise<DropTracer> {
    const log = DropTracer.logFile(opts.dir);
    await host.mkdir(opts.dir);
    await host.writeFile(`${opts.dir}/vxdrops.watch`, '');
    await host.writeFile(log, '');
    const argv = [opts.binary, '--watch-file', `${opts.dir}/vxdrops.watch`, '--out', `${opts.dir}/vxdrops.snapshot`];
    if (opts.exitWith) argv.push('--exit-with', String(opts.exitWith));
    if (opts.stats) argv.push('--stats');
    if (opts.tracepointArgs) argv.push('--tracepoint-args', String(opts.tracepointArgs));
    let proc;
    try {
      proc = await host.spawn(argv, { log });
    } catch (e) {
      throw new DropsUnavailableError(`cannot start ${opts.binary}: ${(e as Error).message.split('\n')[0]}`);
    }
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000);
    for (;;) {
      const text = await host.readFile(log).catch(() => '');
      const lines = jsonLines(text);
      const bad = lines.find((l) => typeof l.unavailable === 'string');
      if (bad) throw new DropsUnavailableError(bad.unavailable as string);
      const ready = lines.find((l) => l.ready === true);
      if (ready) return new DropTracer(host, opts, proc.start, { ...ready, pid: proc.pid });
      if (proc.exitedAtOnce !== undefined || (await host.procStart(proc.pid)) !== proc.start) {
        const tail = text.trim().split('\n').slice(-3).join(' ');
        throw new DropsUnavailableError(`vxdrops exited before attaching${tail ? `: ${tail}` : ''}`);
      }
      if (Date.now() > deadline) {
        await host.kill(proc.pid, 'SIGKILL');
        throw new DropsUnavailableError(`vxdrops did not attach within ${opts.readyTimeoutMs ?? 15_000} ms`);
      }
      await sleep(20);
    }
  }

  /** The run's name for an inode (from watch()). */
  nameOf(inode: number): string | undefined {
    return this.names.get(inode);
  }

  /** Counts drops of this namespace from now on; resolves once the tracer applied it. */
  async watch(inode: number, name: string): Promise<void> {
    await this.watchAll([[inode, name]]);
  }

  /** Counts drops of these namespaces from now on, with one round trip to the tracer for all of them. */
  async watchAll(entries: readonly (readonly [inode: number, name: string])[]): Promise<void> {
    if (entries.length === 0) return;
    for (const [inode, name] of entries) this.names.set(inode, name);
    await this.syncWatches();
    const missing = entries.find(([inode]) => !this.lastStats?.watched.includes(inode));
    if (missing) throw new DropTracerError(`vxdrops did not take netns ${missing[0]} (${missing[1]}) into its watch list`);
  }

  /** Stops counting a namespace (call before deleting it: a new namespace may get its inode). Its past counts stay. */
  async unwatch(inode: number): Promise<void> {
    await this.unwatchAll([inode]);
  }

  /** Stops counting these namespaces, with one round trip for all of them. */
  async unwatchAll(inodes: readonly number[]): Promise<void> {
    const known = inodes.filter((i) => this.names.has(i));
    if (known.length === 0) return;
    for (const i of known) this.names.delete(i);
    await this.syncWatches();
  }

  private async syncWatches(): Promise<void> {
    const body = [...this.names].map(([ino, name]) => `${ino} ${name}\n`).join('');
    await this.serial(async () => {
      await this.host.writeFile(this.watchFile, body);
      await this.roundTrip();
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Signals the tracer (it re-reads the watch file, then writes a snapshot) and waits for that snapshot. */
  private async roundTrip(): Promise<DropSnapshot> {
    if (this.stopped) throw new DropTracerError('vxdrops was stopped');
    // Wait for a snapshot newer than the one on disk now: robust to a signal lost or coalesced earlier.
    const want = (parseSnapshot(await this.host.readFile(this.outFile).catch(() => ''))?.stats.seq ?? 0) + 1;
    if (!(await this.host.kill(this.pid, 'SIGUSR1'))) throw new DropTracerError(`vxdrops (pid ${this.pid}) is gone; see ${DropTracer.logFile(this.opts.dir)}`);
    const bound = this.opts.snapshotTimeoutMs ?? 10_000;
    const deadline = Date.now() + bound;
    for (;;) {
      const snap = parseSnapshot(await this.host.readFile(this.outFile).catch(() => ''));
      if (snap && snap.stats.seq >= want) {
        this.lastStats = snap.stats;
        return snap.counts;
      }
      if (Date.now() > deadline) throw new DropTracerError(`vxdrops wrote no snapshot ${want} within ${bound} ms`);
      await sleep(5);
    }
  }

  /** Cumulative counts since start, for every namespace watched so far. */
  snapshot(): Promise<DropSnapshot> {
    return this.serial(() => this.roundTrip());
  }

  /** What grew between two snapshots, named by watch(); largest first. */
  delta(before: DropSnapshot, after: DropSnapshot): DropRow[] {
    return deltaRows(before, after, this.names);
  }

  /** Stops the tracer (SIGTERM, then SIGKILL after 3 s); the BPF program detaches when it exits. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.queue;
    if (!(await this.host.kill(this.pid, 'SIGTERM'))) return;
    for (let i = 0; i < 150; i++) {
      if ((await this.host.procStart(this.pid)) !== this.start) return;
      await sleep(20);
    }
    if ((await this.host.procStart(this.pid)) === this.start) await this.host.kill(this.pid, 'SIGKILL');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
