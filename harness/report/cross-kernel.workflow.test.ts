/**
 * The nightly kernel matrix (.github/workflows/nightly.yml, jobs `kernels` and `cross-kernel-report`) and the
 * action's `kernel` input. actionlint over the workflow is harness/providers/kind/workflows.test.ts; here the
 * report step's script runs for real over downloaded-artifact fixtures, and run-suites.sh with a stand-in vxchaos.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../config/suite.ts';
import { shell } from '../exec/shell.ts';
import { kernelRun } from './cross-kernel.fixtures.ts';

type Obj = Record<string, any>;
const wf = parse(readFileSync(join(ROOT, '.github', 'workflows', 'nightly.yml'), 'utf8')) as Obj;
const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as Obj;
const kernels = wf.jobs.kernels;
const report = wf.jobs['cross-kernel-report'];

const dir = mkdtempSync(join(tmpdir(), 'vxchaos-xkernel-wf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('nightly kernel matrix', () => {
  it('runs the suites on three Debian kernels and the runner\'s own, through the action\'s kernel input', () => {
    expect(kernels.strategy.matrix.include.map((e: Obj) => e.kernel)).toEqual(['debian:bullseye', 'debian:bookworm', 'debian:trixie', 'host']);
    // artifact names may not hold ':'
    for (const e of kernels.strategy.matrix.include) expect(e.entry).toMatch(/^[a-z0-9-]+$/);
    expect(kernels.strategy['fail-fast']).toBe(false);
    const step = kernels.steps.find((s: Obj) => s.uses === './');
    expect(step.with).toMatchObject({ provider: 'netns', kernel: '${{ matrix.kernel }}', suites: '${{ env.KERNEL_SUITES }}', 'artifact-name': 'kernels-${{ matrix.entry }}' });
    expect(wf.env.KERNEL_SUITES.split(' ')).toEqual(['flannel-arp', 'conntrack-race', 'dead-upstream', 'checksum-offload']);
    // a guest kernel without KVM fails early instead of outlasting the job under TCG
    expect(kernels.steps.find((s: Obj) => /\/dev\/kvm/.test(s.run ?? ''))?.if).toBe("matrix.kernel != 'host'");
  });

  it('publishes one report per suite from every kernel job, even when some failed', () => {
    expect(report.needs).toBe('kernels');
    expect(report.if).toBe('always()');
    expect(report.steps.find((s: Obj) => String(s.uses).startsWith('actions/download-artifact@'))?.with).toEqual({ pattern: 'kernels-*', path: 'artifacts' });
    expect(report.steps.find((s: Obj) => String(s.uses).startsWith('actions/upload-artifact@'))?.with.path).toBe('cross-kernel');
  });

  it('its report step, run as the job runs it, writes each suite\'s report and the job summary', async () => {
    const job = join(dir, 'job');
    for (const k of ['bullseye', 'bookworm', 'host'] as const) {
      const m = kernelRun(k);
      mkdirSync(join(job, 'artifacts', `kernels-${k}`, m.runId), { recursive: true });
      writeFileSync(join(job, 'artifacts', `kernels-${k}`, m.runId, 'matrix.json'), JSON.stringify(m));
    }
    const script = report.steps.find((s: Obj) => /cross-kernel\.ts/.test(s.run ?? '')).run as string;
    const summary = join(dir, 'summary.md');
    // The job's checkout, linked into a scratch directory so the step's relative paths write nowhere else.
    for (const f of ['harness', 'node_modules', 'package.json']) symlinkSync(join(ROOT, f), join(job, f));
    const r = await shell(['bash', '-e', '-c', `cd ${JSON.stringify(job)}\n${script}`], {
      env: { KERNEL_SUITES: 'conntrack-race dead-upstream', GITHUB_STEP_SUMMARY: summary },
      timeoutMs: 120_000,
    });
    expect(r.stdout).toContain('::warning::no cross-kernel report for dead-upstream');
    expect(readFileSync(join(job, 'cross-kernel', 'conntrack-race', 'cross-kernel.html'), 'utf8')).toContain('<tr class="changed"');
    expect(readFileSync(summary, 'utf8')).toContain('musl / conntrack-race(native) / none: reproduced on 5.10.0-32-amd64, not on 6.1.0-29-amd64 and 6.12.12-amd64');
  });
});

describe('the action\'s kernel input', () => {
  it('is declared, documented and reaches the run step through the environment', () => {
    expect(action.inputs.kernel.default).toBe('');
    expect(action.inputs.kernel.description).toMatch(/debian:bookworm/);
    const run = action.runs.steps.find((s: Obj) => s.id === 'run');
    expect(run.env.KERNEL).toBe('${{ inputs.kernel }}');
    // a guest kernel needs qemu and the initramfs tools installed by setup
    expect(action.runs.steps.find((s: Obj) => /setup/.test(String(s.run)))?.run).toContain('--with vm');
  });

  it('run-suites.sh passes it to every suite as --kernel, and nothing when it is empty', async () => {
    const actionPath = join(dir, 'action');
    mkdirSync(join(actionPath, 'bin'), { recursive: true });
    mkdirSync(join(actionPath, '.github', 'action'), { recursive: true });
    writeFileSync(join(actionPath, '.github', 'action', 'run-suites.sh'), readFileSync(join(ROOT, '.github', 'action', 'run-suites.sh')));
    writeFileSync(join(actionPath, 'bin', 'vxchaos.js'), "require('node:fs').appendFileSync(process.env.CALLS, JSON.stringify(process.argv.slice(2)) + '\\n');\n");
    const calls = async (kernel: string) => {
      const env = { GITHUB_ACTION_PATH: actionPath, GITHUB_OUTPUT: join(dir, `out-${kernel}`), CALLS: join(dir, `calls-${kernel}`), SUITES: 'flannel-arp conntrack-race', PROVIDER: 'netns', QUICK: 'false', BASELINE: '', CLIENTS: '', KERNEL: kernel, VXCHAOS_REPORTS: join(dir, 'reports') };
      writeFileSync(env.CALLS, '');
      const r = await shell(['bash', join(actionPath, '.github', 'action', 'run-suites.sh')], { env, timeoutMs: 60_000 });
      expect(r.exitCode).toBe(0);
      return readFileSync(env.CALLS, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    };
    const out = ['--provider', 'netns', '--out', join(dir, 'reports')];
    expect(await calls('debian:bookworm')).toEqual([
      ['suite', 'flannel-arp', ...out, '--kernel', 'debian:bookworm'],
      ['suite', 'conntrack-race', ...out, '--kernel', 'debian:bookworm'],
    ]);
    expect(await calls('')).toEqual([
      ['suite', 'flannel-arp', ...out],
      ['suite', 'conntrack-race', ...out],
    ]);
  });
});
