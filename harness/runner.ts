import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { cpus, hostname, release, totalmem, version } from 'node:os';
import { join } from 'node:path';
import { planCells, connectTargets, type PreparedSuite, type ResolvedCell } from './cells.ts';
import type { Libc, Workload } from './config/suite.ts';
import { InterruptedError } from './errors.ts';
import { addFinalizer } from './exec/finalizers.ts';
import { UndoStack } from './exec/undo.ts';
import { unmetRequirement, type Applied, type FaultContext } from './faults/fault.ts';
import { checkCause } from './measure/cause.ts';
import { startDropSample } from './measure/cell-drops.ts';
import { classify, type Classified } from './measure/classify.ts';
import type { DropRow } from './measure/drops.ts';
import { delta, snapshot } from './measure/counters.ts';
import { measureAdaptive, settlerOptionsFor } from './measure/adaptive.ts';
import { Settler, type Settlement } from './measure/settle.ts';
import type { Progress } from './progress.ts';
import type { Capabilities, Cluster, Provider } from './providers/provider.ts';
import { errorKinds, failsRun, SCHEMA_VERSION, type Cell, type Matrix, type Verdict } from './report/matrix.ts';
import { writeReports } from './report/write.ts';

export interface RunOptions {
  prepared: PreparedSuite;
  provider: Provider;
  clients?: readonly Libc[];
  durationS?: number;
  quick: boolean;
  keep: boolean;
  outDir: string;
  progress: Progress;
  runId?: string;
  /** One cluster, every cell in turn, even where the provider could hold several side by side (clustersAtOnce). */
  serial?: boolean;
  /** Reporters to write (names from report/reporters.ts); default all. */
  reporters?: readonly string[];
  /**
   * Do everything through the provider — bring-up, each cell's fault, mitigation, probe command and undo — but
   * judge nothing and write no report: with a recording provider this is the plan of a run.
   */
  dryRun?: boolean;
}

export function newRunId(): string {
  return randomBytes(3).toString('hex');
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The cell's row identity, shared by measured, skipped and erroring cells. */
function cellHead(rc: ResolvedCell, wl: Workload, cluster: Pick<Cluster, 'topology'>): Pick<Cell, 'client' | 'fault' | 'faultMode' | 'mitigation' | 'workload' | 'target' | 'expectation' | 'thresholdMs' | 'threads' | 'fresh' | 'source' | 'name' | 'expectedStallMs'> {
  const connect = wl.kind === 'connect' ? connectTargets(cluster.topology, wl.targets) : undefined;
  return {
    client: rc.client,
    fault: rc.fault.name,
    faultMode: rc.mode,
    mitigation: rc.mitigation.name,
    workload: wl.kind,
    target: connect && 'ips' in connect ? connect.ips.map((ip) => `${ip}:${connect.port}`).join(',') : wl.targets.join(','),
    expectation: rc.expectation.expect,
    thresholdMs: wl.thresholdMs,
    threads: wl.threads,
    fresh: wl.fresh,
    source: wl.source,
    ...(rc.name ? { name: rc.name } : {}),
    ...(rc.expectation.expect === 'reproduces' && rc.expectation.stallMs ? { expectedStallMs: [...rc.expectation.stallMs] as [number, number] } : {}),
  };
}

const EMPTY: Classified = { samples: 0, errors: 0, errorsByKind: {}, affected: 0, stallP50Ms: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, overThreshold: 0, histogram: '' };

function toCell(
  rc: ResolvedCell,
  wl: Workload,
  cluster: Pick<Cluster, 'topology'>,
  c: Classified,
  verdict: Verdict,
  reason: string,
  caps: Capabilities,
  extra: { counters?: Record<string, number>; countersByNode?: Record<string, Record<string, number>>; durationS: number },
): Cell {
  return {
    ...cellHead(rc, wl, cluster),
    samples: c.samples,
    errors: c.errors,
    errorRate: c.samples ? c.errors / c.samples : 0,
    errorsByKind: c.errorsByKind,
    p50Ms: c.p50Ms,
    p90Ms: c.p90Ms,
    p99Ms: c.p99Ms,
    p999Ms: c.p999Ms,
    maxMs: c.maxMs,
    overThreshold: c.overThreshold,
    counters: extra.counters ?? {},
    verdict,
    reason,
    affected: c.affected,
    affectedRate: c.samples ? c.affected / c.samples : 0,
    durationS: extra.durationS,
    histogram: c.histogram,
    countersByNode: extra.countersByNode ?? {},
    stallP50Ms: c.stallP50Ms,
    failsRun: failsRun(verdict, rc.mode, caps.symptomsGuaranteed),
  };
}

/**
 * What the settlement adds to a cell: the interval, its confidence, why and when measuring stopped. The counts
 * are the decision's: affected lookups cut short in flight are in samples and affected (stopped.inFlight).
 */
export function settledFields(s: Settlement, inFlight: number, confidence: number): Pick<Cell, 'samples' | 'affected' | 'affectedRate' | 'affectedInterval' | 'confidence' | 'stopped'> {
  const { samples, affected } = s.classified;
  return {
    samples,
    affected,
    affectedRate: samples ? affected / samples : 0,
    affectedInterval: s.interval,
    confidence,
    stopped: { by: s.stoppedBy, afterSamples: s.atSamples, afterMs: Math.round(s.atMs), ...(inFlight ? { inFlight } : {}) },
  };
}

/** The probe where the workload runs: the client pod, or its node's own namespace for node → Service traffic. */
async function measure(cluster: Cluster, rc: ResolvedCell, wl: Workload, client: FaultContext['client'], undo: UndoStack) {
  const source = wl.source === 'node' ? cluster.nodeProbe(client.node) : client;
  if (wl.source === 'node' && wl.kind === 'resolve') {
    // A node resolves through its own resolv.conf: the cluster DNS and the workload's options. The file is
    // private to the run (a requirement of the cell), and what was there goes back.
    const conf = `nameserver ${cluster.topology.dns.clusterIP}\n${wl.resolverOptions.length ? `options ${wl.resolverOptions.join(' ')}\n` : ''}`;
    const found = await source.readFile('/etc/resolv.conf').catch(() => undefined);
    await source.writeFile('/etc/resolv.conf', conf);
    undo.push(`${source.name}: resolv.conf as found`, () => source.writeFile('/etc/resolv.conf', found ?? ''));
  }
  const connect = wl.kind === 'connect' ? connectTargets(cluster.topology, wl.targets) : undefined;
  if (connect && 'problem' in connect) throw new Error(connect.problem); // validated when the suite was loaded
  const probeArgs = connect
    ? { targets: connect.ips, connectPort: connect.port, threads: wl.threads, durationS: wl.durationS }
    : { targets: wl.targets, threads: wl.threads, durationS: wl.durationS, fresh: wl.fresh };
  const settler = new Settler(rc.expectation, settlerOptionsFor(rc.expectation, wl, rc.stop));
  // The kernel's counters and the tracer's, taken together before and after: a cell waits for the slower only.
  const [drops, before] = await Promise.all([startDropSample(cluster), snapshot(cluster.nodes)]);
  const out = await measureAdaptive(source, probeArgs, settler);
  const [after, dropped] = await Promise.all([snapshot(cluster.nodes), drops.end()]);
  return { samples: out.output.samples, settlement: out.settlement, inFlight: out.inFlight, counters: delta(before, after), drops: dropped };
}

export interface CellRunOptions {
  log: (msg: string) => void;
  /** Where a failing cell's logs go (the provider's collectLogs). */
  logsDir?: string;
  dryRun?: boolean;
  /** The drop rows of the same client's no-fault cell of this run: a cell's drops are ranked by excess over them. */
  dropBaseline?: readonly DropRow[];
}

/** How much longer a clean cell may measure on an emulated CPU: lookups come several times slower there. */
const EMULATED_CAP_FACTOR = 3;

/**
 * On an emulated CPU (qemu TCG) latencies are inflated and lookups come slowly: a clean cell's p99 bound is not
 * judged (the reason says so), and its cap is longer so its affected share can still reach the confidence
 * asked for. Failed and slow-past-threshold lookups are judged as anywhere.
 */
function underTiming(rc: ResolvedCell, caps: Capabilities): ResolvedCell {
  if (caps.timing !== 'emulated' || rc.expectation.expect !== 'clean' || !Number.isFinite(rc.expectation.maxP99Ms)) return rc;
  return {
    ...rc,
    expectation: { ...rc.expectation, maxP99Ms: Number.POSITIVE_INFINITY },
    workload: { ...rc.workload, durationS: rc.workload.durationS * EMULATED_CAP_FACTOR },
    timingNote: `p99 bound (${rc.expectation.maxP99Ms} ms) not judged and cap ×${EMULATED_CAP_FACTOR}: emulated CPU (qemu TCG)`,
  };
}

/**
 * One cell, start to end, and never a throw (except an interrupt): skipped when the provider lacks what it
 * needs; else fault, mitigation, probe, and the undo stack unwound whatever happened. A cell that throws or
 * whose undo fails gets verdict `error` with the message, and the provider's logs are collected.
 */
export async function runCell(cluster: Cluster, caps: Capabilities, resolved: ResolvedCell, opts: CellRunOptions): Promise<Cell> {
  const t0 = Date.now();
  const rc = underTiming(resolved, caps);
  const elapsed = () => round1((Date.now() - t0) / 1000);
  const skip = unmetRequirement(rc.requirements, caps);
  if (skip) return toCell(rc, rc.workload, cluster, EMPTY, 'skipped', `skipped on ${cluster.provider}: ${skip}`, caps, { durationS: 0 });
  const defaultClient = cluster.clients[rc.client];
  if (!defaultClient) return toCell(rc, rc.workload, cluster, EMPTY, 'error', `no ${rc.client} client in the cluster`, caps, { durationS: 0 });
  const undo = new UndoStack();
  let wl = rc.workload;
  let failure: Error | undefined;
  let result: Cell | undefined;
  try {
    // Entries pin a source port to one endpoint for 30 s+: every cell starts from an empty table.
    await Promise.all(cluster.nodes.map((n) => n.exec(['conntrack', '-F'], { nothrow: true })));
    const ctx = { cluster, client: defaultClient, log: opts.log, undo, workload: wl };
    const fault: Applied = await rc.fault.apply({ ...ctx, params: rc.faultParams }, rc.mode);
    wl = { ...wl, ...fault.workload };
    const faultClient = fault.client ?? defaultClient;
    const mitigation: Applied = await rc.mitigation.apply({ ...ctx, client: faultClient, workload: wl, params: rc.mitigationParams });
    wl = { ...wl, ...mitigation.workload };
    const client = mitigation.client ?? faultClient;
    const m = await measure(cluster, rc, wl, client, undo);
    const final = { ...(await fault.finalCounters?.()), ...(await mitigation.finalCounters?.()) };
    const c = classify(m.samples, wl.thresholdMs);
    const judged = opts.dryRun
      ? { verdict: 'skipped' as const, reason: 'dry run: nothing measured' }
      : { verdict: m.settlement.verdict, reason: `${m.settlement.reason}${errorKinds(c.errorsByKind)}${rc.timingNote ? `; ${rc.timingNote}` : ''}` };
    // The mechanism: did the declared drop happen (reproduces), or still happen (clean)?
    const { verdict, reason, ...dropFields } = checkCause(rc.cause, rc.expectation.expect, judged, m.drops, opts.dropBaseline);
    result = {
      ...toCell(rc, wl, cluster, c, verdict, reason, caps, {
        counters: { ...m.counters.total, ...fault.counters, ...mitigation.counters, ...final },
        countersByNode: m.counters.byNode,
        durationS: 0,
      }),
      ...dropFields,
      ...(opts.dryRun ? {} : settledFields(m.settlement, m.inFlight, rc.stop.confidence)),
    };
  } catch (e) {
    if (e instanceof InterruptedError) {
      await undo.unwind();
      throw e;
    }
    failure = e as Error;
  }
  // A failed or erroring cell's logs are taken before the undo, while the cluster still shows what went wrong.
  const logs = async (suffix = '') => {
    if (!opts.logsDir) return;
    const dir = join(opts.logsDir, `cell-${rc.index}${suffix}`);
    await mkdir(dir, { recursive: true }).catch(() => undefined);
    await cluster.collectLogs(dir).catch(() => undefined);
  };
  if (failure || result?.verdict === 'fail') await logs();
  const undoProblems = await undo.unwind();
  if (undoProblems.length) await logs('-after-undo');
  if (failure || undoProblems.length) {
    const why = [failure ? `${failure.message.split('\n')[0]}` : '', undoProblems.length ? `undo failed: ${undoProblems.join('; ')}` : ''].filter(Boolean).join('; ');
    return toCell(rc, wl, cluster, EMPTY, 'error', `error: ${why}`, caps, { durationS: elapsed() });
  }
  return { ...result!, durationS: elapsed() };
}

/** A cluster of the run and the cells measured on it; a run has one, or several side by side. */
export interface Lane {
  /** 1, 2, …: names its bring-up logs. */
  n: number;
  /** The cluster's run id: the run's own with one lane, `<run>.<n>` with several (`vxchaos down <run>` removes all). */
  id: string;
  /** Prefixed to the cluster's progress lines when clusters run side by side. */
  label: string;
}

export function planLanes(runId: string, cells: number, atOnce: number): Lane[] {
  const n = Math.min(Math.max(1, Math.floor(atOnce)), cells);
  if (n <= 1) return [{ n: 1, id: runId, label: '' }];
  return Array.from({ length: n }, (_, i) => ({ n: i + 1, id: `${runId}.${i + 1}`, label: `cluster ${i + 1}` }));
}

/** The client's no-fault cell: the run's first one with neither fault nor mitigation and no name of its own. */
const isBaseline = (rc: ResolvedCell) => rc.fault.name === 'none' && rc.mitigation.name === 'none' && !rc.name;

/**
 * About how long a cell takes, s, before it runs: what its fault and mitigation declare their apply takes, plus
 * the cap for a reproducing cell (it waits for whole stalls) or twice the threshold for a clean one (it stops
 * at its minimum when nothing is affected).
 */
export function expectedCellS(rc: ResolvedCell): number {
  const apply = (rc.fault.applyS ?? 0) + (rc.mitigation.applyS ?? 0);
  return apply + (rc.expectation.expect === 'reproduces' ? rc.workload.durationS : (2 * rc.workload.thresholdMs) / 1000);
}

/**
 * The order lanes take cells in: each client's no-fault cell first (its drops rank the client's other cells, which
 * wait for it), then the longest first (expectedCellS; plan order among equals), so that clusters side by side
 * end together rather than one waiting out a long last cell alone. Every lane's cluster is built alike and
 * every cell undoes what it did, so any cell may run on any lane.
 */
export function cellQueue(cells: readonly ResolvedCell[]): ResolvedCell[] {
  const first = new Map<Libc, ResolvedCell>();
  for (const rc of cells) if (isBaseline(rc) && !first.has(rc.client)) first.set(rc.client, rc);
  const baselines = new Set(first.values());
  return [...baselines, ...cells.filter((rc) => !baselines.has(rc)).sort((a, b) => expectedCellS(b) - expectedCellS(a))];
}

export async function runSuite(opts: RunOptions): Promise<{ matrix: Matrix; dir: string }> {
  const { prepared, provider, progress } = opts;
  const { suite, topology } = prepared;
  const clients = (opts.clients ?? suite.clients).filter((c) => suite.clients.includes(c));
  const runId = opts.runId ?? newRunId();
  const dir = join(opts.outDir, runId);
  const logsDir = join(dir, 'logs');
  const startedAt = new Date();
  const cells = planCells(suite, clients, { quick: opts.quick, durationS: opts.durationS });
  await provider.preflight();
  const lanes = planLanes(runId, cells.length, opts.serial || opts.dryRun ? 1 : (provider.capabilities.clustersAtOnce ?? 1));
  const side = lanes.length > 1;
  // Side by side, every line says whose it is.
  const say = (lane: Lane, s: string) => (side ? `${lane.label}: ${s}` : s);
  progress.info(
    `run ${runId}: suite ${suite.name} on ${provider.name}, ${cells.length} cells, clients ${clients.join(', ')}${side ? `, ${lanes.length} clusters side by side (${lanes.map((l) => l.id).join(', ')})` : ''}${opts.quick ? ' (quick)' : ''}${opts.dryRun ? ' (dry run)' : ''}`,
  );
  const clusters = new Map<Lane, Cluster>();
  // The provider's own teardown by run id works at any point, even mid-creation.
  const teardown = async () => {
    await Promise.all(
      lanes.map(async (lane) => {
        await clusters.get(lane)?.down().catch((e: Error) => progress.warn(say(lane, `teardown: ${e.message}`)));
        const r = await provider.down(lane.id);
        for (const p of r.problems) progress.warn(say(lane, `teardown: ${p}`));
      }),
    );
  };
  const removeFinalizer = addFinalizer(`run ${runId}`, teardown);
  try {
    // Every cluster up before any cell runs: a bring-up that fails stops the run at once.
    const ups = await Promise.allSettled(
      lanes.map(async (lane) => {
        const t0 = Date.now();
        const cluster = await provider.up(topology, {
          runId: lane.id,
          clients,
          logsDir: join(logsDir, side ? `bring-up-${lane.n}` : 'bring-up'),
          onStep: (s, state, ms) => (state === 'start' ? progress.step(say(lane, s)) : progress.done(say(lane, s), ms)),
        });
        clusters.set(lane, cluster);
        progress.done(say(lane, `cluster ${topology.name} up`), Date.now() - t0);
      }),
    );
    const failedUp = ups.find((u): u is PromiseRejectedResult => u.status === 'rejected');
    if (failedUp) throw failedUp.reason;
    const results = new Map<ResolvedCell, Cell>();
    const queue = cellQueue(cells);
    // Per client, its no-fault cell as it runs: what every run has, so its drops rank the client's other cells
    // (which wait for it). It is first in the queue, so it has been taken before any cell that waits for it.
    const baselines = new Map<Libc, Promise<Cell>>();
    const baselineRows = (client: Libc) => baselines.get(client)?.then((c) => (c.drops?.available ? c.drops.rows : undefined), () => undefined);
    // A lane that throws (an interrupt) stops the others taking cells; the teardown waits for every lane to end.
    let halted = false;
    const ran = await Promise.allSettled(
      lanes.map(async (lane) => {
        const cluster = clusters.get(lane)!;
        for (let rc = queue.shift(); rc && !halted; rc = queue.shift()) {
          const cellRc = rc;
          const own = isBaseline(rc) && !baselines.has(rc.client);
          const label = `[${rc.index}/${cells.length}] ${rc.label}${side ? ` on ${lane.label}` : ''}`;
          const run = (async () => {
            const dropBaseline = own ? undefined : await baselineRows(cellRc.client);
            progress.step(`${label}: measuring`);
            const log = (m: string) => progress.info(side ? `[${cellRc.index}/${cells.length}] ${m}` : m);
            return runCell(cluster, provider.capabilities, cellRc, { log, logsDir, dryRun: opts.dryRun, dropBaseline });
          })();
          if (own) baselines.set(rc.client, run);
          const cell = await run.catch((e: unknown) => {
            halted = true;
            throw e;
          });
          results.set(rc, side ? { ...cell, cluster: lane.id } : cell);
          const mark = cell.verdict === 'pass' ? 'pass' : cell.verdict.toUpperCase();
          progress.done(`${label}: ${mark} — ${cell.reason}`, Math.round(cell.durationS * 1000));
        }
      }),
    );
    const failedLane = ran.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failedLane) throw failedLane.reason;
    const measured = cells.map((rc) => results.get(rc)!);
    const cluster = clusters.get(lanes[0]!)!;
    const matrix: Matrix = {
      schemaVersion: SCHEMA_VERSION,
      suite: suite.name,
      provider: provider.name,
      runId,
      startedAt: startedAt.toISOString(),
      durationS: round1((Date.now() - startedAt.getTime()) / 1000),
      kernel: (cluster.kernel ?? { release: release() }).release,
      kernelUnderTest: cluster.kernel ?? { release: release(), version: version(), source: 'host' },
      host: {
        hostname: hostname(),
        kernel: release(),
        cpus: String(cpus().length),
        memGiB: String(Math.round(totalmem() / 2 ** 30)),
        node: process.version,
        ...(await cluster.describe()),
        ...(side ? { clusters: `${lanes.length} side by side (${lanes.map((l) => l.id).join(', ')}), cells shared out in turn` } : {}),
      },
      cells: measured,
      quick: opts.quick,
      description: suite.description,
      failed: measured.filter((c) => c.failsRun).length,
      ...(side ? { clusters: lanes.length } : {}),
    };
    if (opts.keep) {
      for (const lane of lanes) {
        const dest = join(logsDir, side ? `kept-${lane.n}` : 'kept');
        await mkdir(dest, { recursive: true });
        await clusters.get(lane)!.collectLogs(dest).catch(() => undefined);
      }
    }
    if (!opts.dryRun) await writeReports(matrix, dir, opts.reporters);
    return { matrix, dir };
  } finally {
    if (opts.keep) {
      // Also after a failed bring-up: what the provider kept of it stays for a person to look at.
      for (const lane of lanes) {
        const cluster = clusters.get(lane);
        progress.warn(`--keep: ${cluster ? 'cluster' : 'what bring-up left of cluster'} ${lane.id} left in place${cluster ? `; enter a node with \`${cluster.enterHint}\`` : ''}`);
      }
      progress.warn(`remove ${side ? 'them' : 'it'} with \`vxchaos down ${runId}\``);
    } else {
      const t0 = Date.now();
      await teardown();
      progress.done(side ? `clusters down (${lanes.length})` : 'cluster down', Date.now() - t0);
    }
    removeFinalizer();
  }
}
