import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, UnknownSuiteError } from '../errors.ts';
import { loadYaml, loadYamlLocated, type Locator } from './load.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SUITES_DIR = join(ROOT, 'suites');
export const CLUSTERS_DIR = join(ROOT, 'clusters');

/** Workload fields without defaults: a cell's override must carry only what the cell says. */
const workloadFields = {
  kind: z.enum(['resolve', 'connect']),
  /** resolve: names the probe cycles through. connect: topology service names or IPv4:port. */
  targets: z.array(z.string().min(1)).min(1),
  /** Where the probe runs: the client pod, or the client node's own namespace (node → Service traffic). */
  source: z.enum(['pod', 'node']),
  threads: z.number().int().min(1).max(512),
  durationS: z.number().positive().max(600),
  /** Fresh resolver state per lookup (short-lived clients). */
  fresh: z.boolean(),
  /** source: node + kind: resolve — resolv.conf options of the node's own resolver (e.g. use-vc). */
  resolverOptions: z.array(z.string().regex(/^[a-z0-9-]+(:\d+)?$/)),
  thresholdMs: z.number().positive(),
};

const Workload = z.strictObject({
  ...workloadFields,
  kind: workloadFields.kind.default('resolve'),
  source: workloadFields.source.default('pod'),
  threads: workloadFields.threads.default(8),
  durationS: workloadFields.durationS.default(10),
  fresh: workloadFields.fresh.default(false),
  resolverOptions: workloadFields.resolverOptions.default([]),
  thresholdMs: workloadFields.thresholdMs.default(1000),
});

const WorkloadOverride = z.strictObject(workloadFields).partial();

const Rate = z.number().min(0).max(1);
const Range = z.tuple([Rate, Rate]).refine(([lo, hi]) => lo <= hi, 'min is above max');
const MsRange = z.tuple([z.number().min(0), z.number().positive()]).refine(([lo, hi]) => lo <= hi, 'min is above max');
const LIBCS = ['musl', 'glibc'] as const;
/** A range for every client, or one per libc (musl stalls 2.5 s where glibc stalls 5 s). */
const PerClient = <T extends z.ZodType>(t: T) => z.union([t, z.strictObject({ musl: t.optional(), glibc: t.optional() })]);

const Params = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

/** How sure a verdict must be, and how soon the runner may stop measuring once it is (measure/settle.ts). */
const stopFields = {
  /** Confidence of the affected share's interval (default 0.95). */
  confidence: z.number().gt(0).lt(1).optional(),
  /** No verdict before this many seconds (default: one full stall period, at least 2 × thresholdMs); durationS is the cap. */
  minS: z.number().min(0).optional(),
};

/** A share of exactly zero can never be shown by sampling: the interval's upper bound is never 0. */
const Tolerance = z.number().gt(0, 'must be above 0: no sample shows a share of exactly 0 (e.g. 0.002)').max(1);
/** The kernel drop that explains the symptom (measure/cause.ts): reason, and optionally where, interface, function. */
const Cause = z.strictObject({
  /** enum skb_drop_reason without SKB_DROP_REASON_ (OTHERHOST, UDP_CSUM, NETFILTER_DROP, …). */
  reason: z.string().regex(/^[A-Z0-9_]+$/, 'a drop reason as the kernel names it, e.g. OTHERHOST'),
  /** A node or pod of the run (node-3, coredns-node-2, client-musl), or `fabric`. */
  where: z.string().min(1).optional(),
  iface: z.string().min(1).optional(),
  func: z.string().min(1).optional(),
});

/** What every cell has, whatever it expects. */
const cellFields = {
  fault: z.string().default('none'),
  mode: z.string().optional(),
  /** The fault's params, checked against the fault's own schema when the suite is loaded. */
  params: Params.default({}),
  mitigation: z.string().default('none'),
  /** The mitigation's params, checked against the mitigation's own schema. */
  mitigationParams: Params.default({}),
  /** This cell measures a different workload than the suite's (e.g. a pod control beside node cells). */
  workload: WorkloadOverride.optional(),
  /** A label for the row when several cells share client × fault × mitigation (e.g. "pod control"). */
  name: z.string().optional(),
  /** Run this cell under --quick too (default true). */
  quick: z.boolean().default(true),
  /** Only for these clients (default: all of the suite's clients). */
  clients: z.array(z.enum(LIBCS)).optional(),
  ...stopFields,
  /** The drop that explains the fault's symptom: checked against the cell's drops (reproduces: must drop; clean: flagged if it does). */
  cause: Cause.optional(),
};

/**
 * The expectation is a union on `expect`, so fields of the other kind are refused: `tolerance` (the share of
 * affected lookups a clean cell may have) cannot be mistaken for the bounds of a reproducing cell's range.
 */
const CellSpec = z.discriminatedUnion('expect', [
  z.strictObject({
    ...cellFields,
    expect: z.literal('reproduces'),
    /** The 95 % interval of the share of affected lookups must lie in [min, max] (default [0.01, 1]). */
    affectedRate: PerClient(Range).optional(),
    /** The median latency of the affected lookups must fall in [min, max] ms (musl's 2.5 s, glibc's 5 s). */
    stallMs: PerClient(MsRange).optional(),
  }),
  z.strictObject({
    ...cellFields,
    expect: z.literal('clean'),
    /** The share of affected lookups tolerated: the interval's upper bound must stay below it (default 0.002). */
    tolerance: Tolerance.optional(),
    /** p99 must stay under this (default 100 ms). */
    maxP99Ms: z.number().positive().optional(),
  }),
]);

/** Fields a suite's `defaults` may give every cell (a cell's own value wins; params merge). */
const CellDefaults = z.strictObject({
  fault: z.string(),
  mode: z.string(),
  params: Params,
  mitigation: z.string(),
  mitigationParams: Params,
  workload: WorkloadOverride,
  quick: z.boolean(),
  clients: z.array(z.enum(LIBCS)),
  ...stopFields,
  /** Only `clean` cells inherit it. */
  tolerance: Tolerance,
  cause: Cause,
}).partial();

/**
 * Merges `defaults` under each cell before the cells are decoded (line numbers still point at the cell). A
 * fault's mode, params and cause are inherited only by cells of that fault, a mitigation's params only by cells of
 * that mitigation; params and workload merge key by key.
 */
function withDefaults(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const r = raw as { defaults?: Record<string, unknown>; cells?: unknown };
  if (!r.defaults || typeof r.defaults !== 'object' || !Array.isArray(r.cells)) return raw;
  const d = r.defaults;
  const merged = r.cells.map((c) => {
    if (typeof c !== 'object' || c === null) return c;
    const cell = c as Record<string, unknown>;
    const inherited: Record<string, unknown> = { ...d };
    if ('fault' in cell && cell.fault !== d.fault) {
      delete inherited.mode;
      delete inherited.params;
      delete inherited.cause; // the fault's mechanism, like its mode
    }
    if ('mitigation' in cell && cell.mitigation !== d.mitigation) delete inherited.mitigationParams;
    if (cell.expect !== 'clean') delete inherited.tolerance;
    const out: Record<string, unknown> = { ...inherited, ...cell };
    for (const k of ['params', 'mitigationParams', 'workload']) {
      if (typeof inherited[k] === 'object' && typeof cell[k] === 'object') out[k] = { ...(inherited[k] as object), ...(cell[k] as object) };
    }
    return out;
  });
  return { ...r, cells: merged };
}

export const SuiteSchema = z.preprocess(
  withDefaults,
  z.strictObject({
    name: z.string().regex(/^[a-z0-9-]+$/),
    description: z.string(),
    seeds: z.array(z.string()).default([]),
    topology: z.string().default('three-node'),
    clients: z.array(z.enum(LIBCS)).min(1).default(['musl', 'glibc']),
    workload: Workload,
    quick: z.strictObject({ durationS: z.number().positive().optional(), threads: z.number().int().min(1).optional() }).default({}),
    defaults: CellDefaults.optional(),
    cells: z.array(CellSpec).min(1),
  }),
);

export type Suite = z.output<typeof SuiteSchema>;
export type CellSpec = z.output<typeof CellSpec>;
export type Libc = (typeof LIBCS)[number];
export type Workload = z.output<typeof Workload>;

export function listSuites(): { name: string; description: string; file: string }[] {
  if (!existsSync(SUITES_DIR)) return [];
  return readdirSync(SUITES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const file = join(SUITES_DIR, f);
      try {
        const s = loadYaml(file, SuiteSchema);
        return { name: s.name, description: s.description, file };
      } catch (e) {
        return { name: basename(f, '.yaml'), description: `(invalid: ${(e as Error).message.split('\n')[0]})`, file };
      }
    });
}

/** A suite by name (suites/<name>.yaml) or by path to a YAML file. */
export function resolveSuiteFile(nameOrPath: string): string {
  if (nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml') || nameOrPath.includes('/')) {
    if (!existsSync(nameOrPath)) throw new UnknownSuiteError(nameOrPath, listSuites().map((s) => s.name));
    return resolve(nameOrPath);
  }
  const file = join(SUITES_DIR, `${nameOrPath}.yaml`);
  if (!existsSync(file)) throw new UnknownSuiteError(nameOrPath, listSuites().map((s) => s.name));
  return file;
}

/**
 * A suite file decoded strictly, plus a locator for checks that need the registries and the topology
 * (harness/cells.ts): every problem then still says file:line.
 */
export function loadSuiteFile(nameOrPath: string): { suite: Suite; file: string; at: Locator } {
  const file = resolveSuiteFile(nameOrPath);
  const { data: suite, at } = loadYamlLocated(file, SuiteSchema);
  if (suite.name !== basename(file).replace(/\.ya?ml$/, '') && file.startsWith(SUITES_DIR)) {
    throw new ConfigError(file, [`${at(['name'])}name: "${suite.name}" must match the file name ${basename(file)}`]);
  }
  return { suite, file, at };
}

export function topologyFile(name: string): string {
  return name.includes('/') || name.endsWith('.yaml') ? resolve(name) : join(CLUSTERS_DIR, `${name}.yaml`);
}
