import { randomBytes } from 'node:crypto';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadTopology } from './config/topology.ts';
import { topologyFile, type CellSpec, type Suite, type Workload } from './config/suite.ts';
import { VxError } from './errors.ts';
import { downAll } from './providers/netns/ledger.ts';
import { addFinalizer } from './exec/finalizers.ts';
import { getFault } from './faults/index.ts';
import type { AppliedFault } from './faults/fault.ts';
import { getMitigation } from './mitigations/index.ts';
import type { AppliedMitigation } from './mitigations/mitigation.ts';
import { delta, snapshot } from './measure/counters.ts';
import { summarize } from './measure/histogram.ts';
import { runProbe } from './measure/probe.ts';
import type { Progress } from './progress.ts';
import type { Cluster, Libc, Provider } from './providers/provider.ts';
import { affectedOf, countsAsFailure, judge, SCHEMA_VERSION, type Cell, type ExpectationSpec, type Matrix } from './report/matrix.ts';
import { writeReports } from './report/write.ts';

export interface RunOptions {
  suite: Suite;
  provider: Provider;
  clients?: readonly Libc[];
  durationS?: number;
  quick: boolean;
  keep: boolean;
  outDir: string;
  progress: Progress;
  runId?: string;
}

export interface CellPlan {
  client: Libc;
  spec: CellSpec;
  mode: string;
}

export function newRunId(): string {
  return randomBytes(3).toString('hex');
}

/** The cells a run measures, in order: per client, the suite's cells (minus quick: false ones under --quick). */
export function planCells(suite: Suite, clients: readonly Libc[], quick: boolean): CellPlan[] {
  return clients.flatMap((client) =>
    suite.cells
      .filter((c) => (!quick || c.quick) && (!c.clients || c.clients.includes(client)))
      .map((spec) => ({ client, spec, mode: spec.fault === 'none' ? 'none' : (spec.mode ?? getFault(spec.fault).defaultMode) })),
  );
}

export function expectationOf(spec: CellSpec): ExpectationSpec {
  return {
    expect: spec.expect,
    minAffectedRate: spec.affectedRate?.[0] ?? 0.05,
    maxAffectedRate: spec.affectedRate?.[1] ?? 1,
    maxCleanAffectedRate: spec.maxAffectedRate ?? 0,
    maxCleanP99Ms: spec.maxP99Ms ?? 100,
    ...(spec.stallMs ? { stallMs: spec.stallMs } : {}),
  };
}

/** connect targets: a topology service name (its ClusterIP and port) or a literal IPv4:port. */
export function connectTargets(cluster: Cluster, targets: readonly string[]): { ips: string[]; port: number } {
  const resolved = targets.map((t) => {
    const svc = cluster.topology.services.find((s) => s.name === t);
    if (svc) return { ip: svc.clusterIP, port: svc.port };
    const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(t);
    if (!m) throw new VxError('E_WORKLOAD', `connect target "${t}" is neither a service of topology ${cluster.topology.name} nor IPv4:port`);
    return { ip: m[1]!, port: Number(m[2]) };
  });
  const ports = new Set(resolved.map((r) => r.port));
  if (ports.size !== 1) throw new VxError('E_WORKLOAD', `connect targets must share one port (got ${[...ports].join(', ')})`);
  return { ips: resolved.map((r) => r.ip), port: resolved[0]!.port };
}

/** Median of latencies in µs, as ms (0 for none). */
export function medianMs(latenciesUs: readonly number[]): number {
  if (latenciesUs.length === 0) return 0;
  const sorted = [...latenciesUs].sort((a, b) => a - b);
  return Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!) / 1000;
}

async function measureCell(cluster: Cluster, suite: Suite, plan: CellPlan, opts: RunOptions): Promise<Cell> {
  const defaultClient = cluster.clients[plan.client];
  if (!defaultClient) throw new VxError('E_CLIENT', `no ${plan.client} client in the cluster`);
  const log = (m: string) => opts.progress.info(m);
  // Entries pin a source port to one endpoint for 30 s+: every cell starts from an empty table.
  await Promise.all(cluster.nodes.map((n) => n.exec(['conntrack', '-F'], { nothrow: true })));
  const ctx = { cluster, client: defaultClient, params: plan.spec.params, log, workload: { ...suite.workload, ...plan.spec.workload } };
  let fault: AppliedFault | undefined;
  let mitigation: AppliedMitigation | undefined;
  const t0 = Date.now();
  try {
    fault = await getFault(plan.spec.fault).apply(ctx, plan.mode);
    mitigation = await getMitigation(plan.spec.mitigation).apply({ ...ctx, client: fault.client ?? defaultClient, workload: { ...ctx.workload, ...fault.workload } });
    const wl: Workload = { ...suite.workload, ...plan.spec.workload, ...fault.workload, ...mitigation.workload };
    const client = mitigation.client ?? fault.client ?? defaultClient;
    const durationS = opts.durationS ?? (opts.quick ? (suite.quick.durationS ?? wl.durationS) : wl.durationS);
    const threads = opts.quick && !fault.workload?.threads && !mitigation.workload?.threads ? (suite.quick.threads ?? wl.threads) : wl.threads;
    const source = wl.source === 'node' ? cluster.nodeProbe(client.node) : client;
    if (wl.source === 'node' && wl.kind === 'resolve') {
      // A node resolves through its own resolv.conf: the cluster DNS, FQDN targets, the workload's options.
      const conf = `nameserver ${cluster.topology.dns.clusterIP}\n${wl.resolverOptions.length ? `options ${wl.resolverOptions.join(' ')}\n` : ''}`;
      await source.writeFile('/etc/resolv.conf', conf);
    }
    const connect = wl.kind === 'connect' ? connectTargets(cluster, wl.targets) : undefined;
    const probeArgs = connect
      ? { targets: connect.ips, connectPort: connect.port, threads, durationS }
      : { targets: wl.targets, threads, durationS, fresh: wl.fresh };
    const before = await snapshot(cluster.nodes);
    const out = await runProbe(source, probeArgs);
    const after = await snapshot(cluster.nodes);
    const counters = delta(before, after);
    const final = { ...(await fault.finalCounters?.()), ...(await mitigation.finalCounters?.()) };
    const errorsByKind: Record<string, number> = {};
    let errors = 0;
    let slowErrors = 0;
    for (const s of out.samples) {
      if (s.result === 'OK') continue;
      errors++;
      errorsByKind[s.result] = (errorsByKind[s.result] ?? 0) + 1;
      if (s.latencyUs > wl.thresholdMs * 1000) slowErrors++;
    }
    const lat = summarize(out.samples.map((s) => s.latencyUs), wl.thresholdMs);
    const affected = affectedOf({ errors, overThreshold: lat.overThreshold }, slowErrors);
    const stallP50Ms = medianMs(out.samples.filter((s) => s.result !== 'OK' || s.latencyUs > wl.thresholdMs * 1000).map((s) => s.latencyUs));
    const { verdict, reason } = judge(expectationOf(plan.spec), { samples: out.samples.length, errors, overThreshold: lat.overThreshold, p99Ms: lat.p99Ms, errorsByKind, stallP50Ms }, affected);
    return {
      client: plan.client,
      fault: plan.spec.fault,
      faultMode: plan.mode,
      mitigation: plan.spec.mitigation,
      workload: wl.kind,
      target: connect ? connect.ips.map((ip) => `${ip}:${connect.port}`).join(',') : wl.targets.join(','),
      samples: out.samples.length,
      errors,
      errorRate: out.samples.length ? errors / out.samples.length : 0,
      errorsByKind,
      p50Ms: lat.p50Ms,
      p90Ms: lat.p90Ms,
      p99Ms: lat.p99Ms,
      p999Ms: lat.p999Ms,
      maxMs: lat.maxMs,
      thresholdMs: wl.thresholdMs,
      overThreshold: lat.overThreshold,
      counters: { ...counters.total, ...fault.counters, ...mitigation.counters, ...final },
      expectation: plan.spec.expect,
      verdict,
      reason,
      affectedRate: out.samples.length ? affected / out.samples.length : 0,
      threads,
      durationS: Math.round((Date.now() - t0) / 100) / 10,
      fresh: wl.fresh,
      ...(plan.spec.name ? { name: plan.spec.name } : {}),
      source: wl.source,
      histogram: lat.histogram,
      countersByNode: counters.byNode,
      stallP50Ms,
      ...(plan.spec.stallMs ? { expectedStallMs: plan.spec.stallMs } : {}),
    };
  } finally {
    await mitigation?.revert();
    await fault?.revert();
  }
}

export async function runSuite(opts: RunOptions): Promise<{ matrix: Matrix; dir: string }> {
  const { suite, provider, progress } = opts;
  const clients = (opts.clients ?? suite.clients).filter((c) => suite.clients.includes(c));
  const runId = opts.runId ?? newRunId();
  const dir = join(opts.outDir, runId);
  const startedAt = new Date();
  const plans = planCells(suite, clients, opts.quick);
  await provider.preflight();
  const topo = loadTopology(topologyFile(suite.topology));
  progress.info(`run ${runId}: suite ${suite.name} on ${provider.name}, ${plans.length} cells, clients ${clients.join(', ')}${opts.quick ? ' (quick)' : ''}`);
  let cluster: Cluster | undefined;
  // Removes what the run created: the provider's own teardown once the cluster exists, and the on-disk
  // ledger (netns), which works at any point, even mid-creation.
  const teardown = async () => {
    await cluster?.down().catch((e: Error) => progress.warn(`teardown: ${e.message}`));
    await downAll(undefined, runId);
  };
  const removeFinalizer = addFinalizer(`run ${runId}`, teardown);
  try {
    const t0 = Date.now();
    cluster = await provider.up(topo, {
      runId,
      clients,
      onStep: (s, state, ms) => (state === 'start' ? progress.step(s) : progress.done(s, ms)),
    });
    progress.done(`cluster ${topo.name} up`, Date.now() - t0);
    const cells: Cell[] = [];
    for (const [i, plan] of plans.entries()) {
      const label = `[${i + 1}/${plans.length}] ${plan.client} × ${plan.spec.fault}${plan.mode !== 'none' ? `(${plan.mode})` : ''} × ${plan.spec.mitigation}`;
      progress.step(`${label}: measuring`);
      const cell = await measureCell(cluster, suite, plan, opts);
      cells.push(cell);
      const mark = cell.verdict === 'pass' ? 'pass' : cell.verdict.toUpperCase();
      progress.done(`${label}: ${mark} — ${cell.reason}`, Math.round(cell.durationS * 1000));
    }
    const kernel = release();
    const matrix: Matrix = {
      schemaVersion: SCHEMA_VERSION,
      suite: suite.name,
      provider: provider.name,
      runId,
      startedAt: startedAt.toISOString(),
      durationS: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
      kernel,
      host: { hostname: hostname(), cpus: String(cpus().length), memGiB: String(Math.round(totalmem() / 2 ** 30)), node: process.version, ...(await cluster.describe()) },
      cells,
      quick: opts.quick,
      description: suite.description,
      failed: cells.filter((c) => countsAsFailure(c, provider.name)).length,
    };
    await writeReports(matrix, dir);
    return { matrix, dir };
  } finally {
    if (opts.keep && cluster) {
      const enter = provider.name === 'netns' ? `ip netns exec vxc-${runId}-<node> bash` : `docker exec -it <node> bash`;
      progress.warn(`--keep: cluster ${runId} left running; enter a node with \`${enter}\`, remove it with \`vxchaos down ${provider.name === 'netns' ? runId : '--all'}\``);
    } else {
      const t0 = Date.now();
      await teardown();
      progress.done('cluster down', Date.now() - t0);
    }
    removeFinalizer();
  }
}
