import { loadSuiteFile, topologyFile, type CellSpec, type Libc, type Suite, type Workload } from './config/suite.ts';
import { loadTopology, type Topology } from './config/topology.ts';
import { ConfigError } from './errors.ts';
import { FAULTS } from './faults/index.ts';
import type { Fault, Requirement } from './faults/fault.ts';
import { MITIGATIONS } from './mitigations/index.ts';
import type { Mitigation } from './mitigations/mitigation.ts';
import { DEFAULT_CONFIDENCE } from './measure/confidence.ts';
import { DEFAULT_CLEAN_TOLERANCE } from './measure/settle.ts';
import type { Cause } from './measure/cause.ts';
import type { ExpectationSpec } from './report/matrix.ts';

/** A suite checked against the fault and mitigation registries and its topology: ready to run, nothing built yet. */
export interface PreparedSuite {
  suite: Suite;
  file: string;
  topology: Topology;
}

/** One cell, everything merged once: what the runner applies, measures and judges. Pure data. */
export interface ResolvedCell {
  /** 1-based position in the run, and a label for progress lines and logs. */
  index: number;
  label: string;
  client: Libc;
  name?: string;
  fault: Fault;
  mode: string;
  faultParams: unknown;
  mitigation: Mitigation;
  mitigationParams: unknown;
  /** suite ⊕ cell ⊕ --quick ⊕ --duration; a fault or mitigation may still change it when applied. */
  workload: Workload;
  expectation: ExpectationSpec;
  /** The verdict's confidence, and the least time (s) before the runner may stop on a settled verdict (unset: measure/adaptive.ts's default). */
  stop: { confidence: number; minS?: number };
  /** What the cell needs from the provider: unmet, it is skipped with the reason. */
  requirements: Requirement[];
  /** Set by the runner when a bound was not judged on this provider (e.g. p99 on an emulated CPU). */
  timingNote?: string;
  /** The drop that explains the symptom, checked against the cell's drops (measure/cause.ts). */
  cause?: Cause;
}

export interface ResolveOptions {
  quick: boolean;
  /** --duration: measurement time per cell, overriding the suite. */
  durationS?: number;
}

/** A topology service name (its ClusterIP and port) or a literal IPv4:port; all on one port. */
export function connectTargets(topology: Topology, targets: readonly string[]): { ips: string[]; port: number } | { problem: string } {
  const resolved: { ip: string; port: number }[] = [];
  for (const t of targets) {
    const svc = topology.services.find((s) => s.name === t);
    const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(t);
    if (svc) resolved.push({ ip: svc.clusterIP, port: svc.port });
    else if (m) resolved.push({ ip: m[1]!, port: Number(m[2]) });
    else return { problem: `connect target "${t}" is neither a service of topology ${topology.name} (${topology.services.map((s) => s.name).join(', ') || 'none'}) nor IPv4:port` };
  }
  const ports = new Set(resolved.map((r) => r.port));
  if (ports.size !== 1) return { problem: `connect targets must share one port (got ${[...ports].join(', ')})` };
  return { ips: resolved.map((r) => r.ip), port: resolved[0]!.port };
}

type PerClient<T> = T | { musl?: T; glibc?: T };
function forClient<T>(v: PerClient<T> | undefined, client: Libc): T | undefined {
  if (v === undefined || Array.isArray(v)) return v as T | undefined;
  return (v as { musl?: T; glibc?: T })[client];
}

function expectationOf(spec: CellSpec, client: Libc): ExpectationSpec {
  if (spec.expect === 'clean') return { expect: 'clean', tolerance: spec.tolerance ?? DEFAULT_CLEAN_TOLERANCE, maxP99Ms: spec.maxP99Ms ?? 100 };
  const stallMs = forClient(spec.stallMs, client);
  return { expect: 'reproduces', affectedRate: forClient(spec.affectedRate, client) ?? [0.01, 1], ...(stallMs ? { stallMs } : {}) };
}

function mergedWorkload(suite: Suite, spec: CellSpec, opts: ResolveOptions): Workload {
  const wl: Workload = { ...suite.workload, ...spec.workload };
  const durationS = opts.durationS ?? (opts.quick ? (suite.quick.durationS ?? wl.durationS) : wl.durationS);
  const threads = opts.quick ? (suite.quick.threads ?? wl.threads) : wl.threads;
  return { ...wl, durationS, threads };
}

/** One cell of the suite for one client: pure, no cluster needed. Assumes a prepared (validated) suite. */
export function resolveCell(suite: Suite, spec: CellSpec, client: Libc, index: number, opts: ResolveOptions): ResolvedCell {
  const fault = FAULTS[spec.fault]!;
  const mitigation = MITIGATIONS[spec.mitigation]!;
  const mode = spec.fault === 'none' ? 'none' : (spec.mode ?? fault.defaultMode);
  const faultParams = fault.params.parse(spec.params);
  const mitigationParams = mitigation.params.parse(spec.mitigationParams);
  const workload = mergedWorkload(suite, spec, opts);
  const requirements: Requirement[] = [...(fault.requires?.(faultParams, mode) ?? []), ...(mitigation.requires?.(mitigationParams, '') ?? [])];
  if (workload.source === 'node' && workload.kind === 'resolve') {
    requirements.push({ capability: 'privateNodeFiles', because: 'configures the node\'s own resolver through a /etc/resolv.conf that must be private to the run' });
  }
  const label = `${client}${spec.name ? ` (${spec.name})` : ''} × ${spec.fault}${mode !== 'none' ? `(${mode})` : ''} × ${spec.mitigation}`;
  return {
    index,
    label,
    client,
    ...(spec.name ? { name: spec.name } : {}),
    fault,
    mode,
    faultParams,
    mitigation,
    mitigationParams,
    workload,
    expectation: expectationOf(spec, client),
    stop: { confidence: spec.confidence ?? DEFAULT_CONFIDENCE, ...(spec.minS !== undefined ? { minS: spec.minS } : {}) },
    requirements,
    ...(spec.cause ? { cause: spec.cause } : {}),
  };
}

/** The cells a run measures, in order: per client, the suite's cells (minus quick: false ones under --quick). */
export function planCells(suite: Suite, clients: readonly Libc[], opts: ResolveOptions): ResolvedCell[] {
  const specs = clients.flatMap((client) => suite.cells.filter((c) => (!opts.quick || c.quick) && (!c.clients || c.clients.includes(client))).map((spec) => ({ client, spec })));
  return specs.map(({ client, spec }, i) => resolveCell(suite, spec, client, i + 1, opts));
}

/**
 * Everything that can be checked before anything is built: fault and mitigation names, modes, each one's
 * params against its own schema, clients, connect targets against the topology. Every problem at once, each
 * with file:line.
 */
export function prepareSuite(nameOrPath: string): PreparedSuite {
  const { suite, file, at } = loadSuiteFile(nameOrPath);
  const topology = loadTopology(topologyFile(suite.topology));
  const problems: string[] = [];
  const known = (what: string, names: string[]) => `known ${what}: ${names.join(', ')}`;
  suite.cells.forEach((spec, i) => {
    const where = (...path: (string | number)[]) => `${at(['cells', i, ...path])}cells[${i}]${path.length ? `.${path.join('.')}` : ''}`;
    const fault = FAULTS[spec.fault];
    if (!fault) problems.push(`${where('fault')}: unknown fault "${spec.fault}"; ${known('faults', Object.keys(FAULTS))}`);
    else {
      if (spec.mode !== undefined && !fault.modes.includes(spec.mode)) {
        problems.push(`${where('mode')}: ${spec.fault === 'none' ? 'fault "none" has no modes' : `fault ${spec.fault} has modes ${fault.modes.join(', ')} (got "${spec.mode}")`}`);
      }
      const p = fault.params.safeParse(spec.params);
      if (!p.success) for (const issue of p.error.issues) problems.push(`${where('params', ...paramPath(issue))}: ${issueText(issue, spec.fault)}`);
    }
    const mitigation = MITIGATIONS[spec.mitigation];
    if (!mitigation) problems.push(`${where('mitigation')}: unknown mitigation "${spec.mitigation}"; ${known('mitigations', Object.keys(MITIGATIONS))}`);
    else {
      const p = mitigation.params.safeParse(spec.mitigationParams);
      if (!p.success) for (const issue of p.error.issues) problems.push(`${where('mitigationParams', ...paramPath(issue))}: ${issueText(issue, spec.mitigation)}`);
    }
    for (const c of spec.clients ?? []) if (!suite.clients.includes(c)) problems.push(`${where('clients')}: client ${c} is not one of the suite's clients (${suite.clients.join(', ')})`);
    const wl = { ...suite.workload, ...spec.workload };
    if (wl.kind === 'connect') {
      const t = connectTargets(topology, wl.targets);
      if ('problem' in t) problems.push(`${spec.workload?.targets ? where('workload', 'targets') : `${at(['workload', 'targets'])}workload.targets`}: ${t.problem}`);
    }
  });
  if (problems.length) throw new ConfigError(file, problems);
  return { suite, file, topology };
}

function paramPath(issue: { path: PropertyKey[]; code: string; keys?: string[] }): (string | number)[] {
  const path = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
  return issue.code === 'unrecognized_keys' && issue.keys?.[0] ? [...path, issue.keys[0]] : path;
}

function issueText(issue: { code: string; message: string; keys?: string[] }, who: string): string {
  return issue.code === 'unrecognized_keys' ? `${who} has no param${issue.keys!.length > 1 ? 's' : ''} ${issue.keys!.map((k) => `"${k}"`).join(', ')}` : issue.message;
}
