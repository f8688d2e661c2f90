import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, UnknownSuiteError } from '../errors.ts';
import { loadYaml } from './load.ts';

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

const Range = z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]);

const CellSpec = z.strictObject({
  fault: z.string().default('none'),
  mode: z.string().optional(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  mitigation: z.string().default('none'),
  /** This cell measures a different workload than the suite's (e.g. a pod control beside node cells). */
  workload: WorkloadOverride.optional(),
  /** A label for the row when several cells share client × fault × mitigation (e.g. "pod control"). */
  name: z.string().optional(),
  expect: z.enum(['reproduces', 'clean']),
  /** reproduces: the share of affected lookups must fall in [min, max]. */
  affectedRate: Range.optional(),
  /** clean: tolerated share of affected lookups and p99 bound. */
  maxAffectedRate: z.number().min(0).max(1).optional(),
  maxP99Ms: z.number().positive().optional(),
  /** Run this cell under --quick too (default true). */
  quick: z.boolean().default(true),
  /** Only for these clients (default: all of the suite's clients). */
  clients: z.array(z.enum(['musl', 'glibc'])).optional(),
  /** reproduces: the median latency of the affected lookups must fall in [min, max] ms (e.g. musl's 2.5 s stall). */
  stallMs: z.tuple([z.number().min(0), z.number().positive()]).optional(),
});

export const SuiteSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/),
  description: z.string(),
  seeds: z.array(z.string()).default([]),
  provider: z.enum(['netns', 'kind']).default('netns'),
  topology: z.string().default('three-node'),
  clients: z.array(z.enum(['musl', 'glibc'])).min(1).default(['musl', 'glibc']),
  workload: Workload,
  quick: z.strictObject({ durationS: z.number().positive().optional(), threads: z.number().int().min(1).optional() }).default({}),
  cells: z.array(CellSpec).min(1),
});

export type Suite = z.output<typeof SuiteSchema>;
export type CellSpec = z.output<typeof CellSpec>;
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

export function loadSuite(nameOrPath: string): Suite {
  const file = resolveSuiteFile(nameOrPath);
  const suite = loadYaml(file, SuiteSchema);
  const problems: string[] = [];
  if (suite.name !== basename(file).replace(/\.ya?ml$/, '') && file.startsWith(SUITES_DIR)) {
    problems.push(`name: "${suite.name}" must match the file name ${basename(file)}`);
  }
  suite.cells.forEach((c, i) => {
    if (c.affectedRate && c.expect !== 'reproduces') problems.push(`cells[${i}].affectedRate: only for expect: reproduces`);
    if (c.affectedRate && c.affectedRate[0] > c.affectedRate[1]) problems.push(`cells[${i}].affectedRate: min is above max`);
    if ((c.maxAffectedRate !== undefined || c.maxP99Ms !== undefined) && c.expect !== 'clean') problems.push(`cells[${i}]: maxAffectedRate/maxP99Ms are only for expect: clean`);
    if (c.fault === 'none' && c.mode) problems.push(`cells[${i}].mode: fault "none" has no modes`);
    if (c.stallMs && c.expect !== 'reproduces') problems.push(`cells[${i}].stallMs: only for expect: reproduces`);
    if (c.stallMs && c.stallMs[0] > c.stallMs[1]) problems.push(`cells[${i}].stallMs: min is above max`);
  });
  if (problems.length) throw new ConfigError(file, problems);
  return suite;
}

export function topologyFile(name: string): string {
  return name.includes('/') || name.endsWith('.yaml') ? resolve(name) : join(CLUSTERS_DIR, `${name}.yaml`);
}
