import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { planCells, prepareSuite } from './cells.ts';
import { listSuites, ROOT } from './config/suite.ts';
import { doctorReport, setup } from './doctor.ts';
import { VxError } from './errors.ts';
import { installSignalHandlers, runFinalizers } from './exec/finalizers.ts';
import { unmetRequirement } from './faults/fault.ts';
import { FAULTS } from './faults/index.ts';
import { MITIGATIONS } from './mitigations/index.ts';
import { progress } from './progress.ts';
import type { Libc } from './providers/provider.ts';
import { DEFAULT_PROVIDER, PROVIDERS, providerEntry, type ProviderOptions } from './providers/registry.ts';
import { compareCommand, reportCommand } from './report/commands.ts';
import { kernelsReportCommand } from './report/cross-kernel.ts';
import { renderTerminal } from './report/terminal.ts';
import { REPORTER_NAMES, reportersNamed } from './report/write.ts';
import { runSuite } from './runner.ts';
import { downGuests, parseKernelSpec, printKernels } from './vm/index.ts';

// sudo and some CI shells drop the sbin directories where ip, iptables and conntrack live.
{
  const path = (process.env.PATH ?? '').split(':');
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!path.includes(d) && !process.env.VXCHAOS_EXACT_PATH) path.push(d);
  process.env.PATH = path.join(':');
}

const program = new Command();
program
  .name('vxchaos')
  .description('Chaos/regression harness for DNS and flannel VXLAN failures: builds a cluster, injects a fault, measures what\nthe real musl and glibc resolvers feel before and after each mitigation, and writes a matrix CI can gate on.')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    `
Examples:
  npm run suite flannel-arp                 run the flannel-arp suite on the embedded netns provider
  vxchaos suite flannel-arp --quick         shorter measurements (CI on every PR)
  vxchaos suite flannel-arp --clients musl  only the musl (Alpine) resolver
  vxchaos list                              suites, faults and mitigations
  vxchaos doctor                            what this machine lacks, and which package provides it
  vxchaos down --all                        remove what crashed runs left behind

Reports go to reports/<run-id>/ (matrix.json). Exit code: 0 all cells met their expectation, 1 some did not,
2 bad input or environment, 130/143 interrupted (everything created is removed first).`,
  );

function parseClients(v: string): Libc[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of list) if (c !== 'musl' && c !== 'glibc') throw new VxError('E_BAD_FLAG', `--clients: unknown client "${c}" (musl, glibc)`);
  return list as Libc[];
}

function positiveNumber(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new VxError('E_BAD_FLAG', `${flag}: expected a positive number of seconds, got "${v}"`);
    return n;
  };
}

program
  .command('suite')
  .description('run a suite: build the cluster, measure every cell, write reports/<run-id>/')
  .argument('<name>', 'suite name (see `vxchaos list`) or path to a suite YAML')
  .addOption(new Option('--provider <name>', 'cluster provider').choices(PROVIDERS.map((p) => p.name)).default(DEFAULT_PROVIDER))
  .option('--clients <list>', 'resolvers to test, comma-separated: musl,glibc', parseClients)
  .option('--duration <seconds>', 'measurement time per cell (overrides the suite)', positiveNumber('--duration'))
  .option('--quick', 'shorter measurements and only the cells marked quick', false)
  .option('--keep', 'leave the cluster running afterwards (remove it with `vxchaos down <run-id>`)', false)
  .option('--serial', 'one cluster, every cell in turn (by default netns builds two and shares the cells out, side by side)', false)
  .option('--out <dir>', 'report directory', resolve(ROOT, 'reports'))
  .option('--reporter <list>', `reports to write, comma-separated (${REPORTER_NAMES.join(', ')}); default all`, (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean))
  .option('--baseline <path>', 'compare against a previous run (run dir or matrix.json); exit 1 on a regression')
  .option('--dry-run', 'print what would run (kind: every command, the generated kind config and manifests) and stop', false)
  .addOption(new Option('--kernel <spec>', 'kernel under test: host, debian:bullseye|bookworm|trixie, or a kernel image path (a qemu microVM; see `vxchaos kernels`)').env('VXCHAOS_KERNEL').default('host'))
  .addOption(new Option('--k8s-version <v>', 'kind: Kubernetes version of the pinned node image').env('VXCHAOS_K8S_VERSION'))
  .addOption(new Option('--flannel-version <v>', 'kind: pinned kube-flannel version').env('VXCHAOS_FLANNEL_VERSION'))
  .action(async (name: string, o: { provider: string; clients?: Libc[]; duration?: number; quick: boolean; keep: boolean; serial: boolean; out: string; reporter?: string[]; baseline?: string; dryRun: boolean; kernel: string; k8sVersion?: string; flannelVersion?: string }) => {
    // Everything that can be checked is checked before anything is built.
    const prepared = prepareSuite(name);
    const { suite } = prepared;
    if (o.reporter) reportersNamed(o.reporter);
    const clients = o.clients ?? suite.clients;
    if (o.kernel !== 'host' && !providerEntry(o.provider).kernels) {
      throw new VxError('E_BAD_FLAG', `--kernel: the ${o.provider} provider's nodes run the machine's own kernel; another kernel needs a provider that boots one (${PROVIDERS.filter((p) => p.kernels).map((p) => p.name).join(', ')})`);
    }
    parseKernelSpec(o.kernel); // a bad spec is refused before anything is fetched or built
    const popts: ProviderOptions = { outDir: o.out, keep: o.keep, k8sVersion: o.k8sVersion, flannelVersion: o.flannelVersion, kernel: o.kernel };
    const provider = providerEntry(o.provider).create(popts);
    if (o.dryRun) {
      const plan = providerEntry(o.provider).plan?.({ ...popts, suite: suite.name });
      if (plan) {
        // The real runner over a recording provider: the plan holds the commands the cells really issue.
        await runSuite({ prepared, provider: plan.provider, progress: plan.progress, clients, durationS: o.duration, quick: o.quick, keep: false, outDir: o.out, runId: 'dry-run', dryRun: true });
        console.log(plan.render());
        return;
      }
      console.log(`suite ${suite.name} on ${provider.name} (topology ${suite.topology}), cells in order:`);
      for (const c of planCells(suite, clients, { quick: o.quick, durationS: o.duration })) {
        const skip = unmetRequirement(c.requirements, provider.capabilities);
        console.log(`  [${c.index}] ${c.label} — ${skip ? `skipped: ${skip}` : `expect ${c.expectation.expect}`}`);
      }
      return;
    }
    const p = progress();
    const { matrix, dir } = await runSuite({ prepared, provider, clients, durationS: o.duration, quick: o.quick, keep: o.keep, serial: o.serial, outDir: o.out, progress: p, reporters: o.reporter });
    console.log(`\n${renderTerminal(matrix, process.stdout.isTTY === true)}\n`);
    console.log(`reports: ${dir}/ (${reportersNamed(o.reporter).map((r) => r.file).join(', ')})`);
    if (matrix.failed > 0) {
      console.log(`${matrix.failed} cell(s) did not meet their expectation`);
      process.exitCode = 1;
    }
    if (o.baseline && (await compareCommand(o.baseline, dir, { out: dir })) !== 0) process.exitCode = 1;
  });

program
  .command('report')
  .description('regenerate matrix.md, junit.xml and index.html of a run from its matrix.json')
  .argument('<run-dir>', 'e.g. reports/3f9a1c')
  .action(async (runDir: string) => {
    await reportCommand(runDir);
  });

program
  .command('compare')
  .description('per-cell regression verdicts between two runs (noise-tolerant); exit 1 on a regression')
  .argument('<baseline>', 'run dir or matrix.json of the reference run')
  .argument('<current>', 'run dir or matrix.json of the run under test')
  .option('--out <path>', 'also write the Markdown here (a directory gets compare.md)')
  .action(async (baseline: string, current: string, o: { out?: string }) => {
    process.exitCode = await compareCommand(baseline, current, { out: o.out });
  });

// vxchaos kernels-report <runs...> [--suite NAME] [--out DIR]: the same suite's runs side by side, a column per kernel
program.addCommand(kernelsReportCommand());

program
  .command('list')
  .description('list suites, faults and mitigations')
  .action(() => {
    console.log('Suites:');
    for (const s of listSuites()) console.log(`  ${s.name.padEnd(18)} ${s.description}`);
    console.log('\nFaults:');
    for (const f of Object.values(FAULTS)) console.log(`  ${f.name.padEnd(18)} ${f.description}${f.modes.length > 1 ? ` [modes: ${f.modes.join(', ')}]` : ''}`);
    console.log('\nMitigations:');
    for (const m of Object.values(MITIGATIONS)) console.log(`  ${m.name.padEnd(18)} ${m.description}`);
  });

program
  .command('doctor')
  .description('check this machine: root, system tools (with the package that provides each), probe builds')
  .action(() => {
    const r = doctorReport();
    console.log(`${r.root ? '✓' : '✗'} root${r.root ? '' : ' — the netns provider needs root (namespaces, iptables, conntrack)'}`);
    for (const l of r.lines) console.log(`${l.ok ? '✓' : '✗'} ${l.tool.padEnd(24)} ${l.ok ? '' : `missing — apt-get install ${l.pkg}   `}${l.why}`);
    for (const [p, ok] of Object.entries(r.probes)) console.log(`${ok ? '✓' : '✗'} ${p.padEnd(24)} ${ok ? '' : 'not built — npm run setup'}`);
    // The drop tracer is optional: without it every cell says `drops: unavailable (why)` and the rest runs.
    console.log(`${r.drops.ok ? '✓' : '!'} ${'vxdrops (drop tracer)'.padEnd(24)} ${r.drops.ok ? '' : `unavailable: ${r.drops.why}`}`);
    const missing = r.lines.filter((l) => !l.ok);
    if (missing.length) console.log(`\nto install: apt-get update && apt-get install -y ${[...new Set(missing.map((m) => m.pkg))].join(' ')}`);
    if (!r.root || missing.some((m) => !/bench|report|drops/.test(m.why)) || Object.values(r.probes).some((ok) => !ok)) process.exitCode = 1;
  });

program
  .command('setup')
  .description('install missing Debian packages (as root, with apt-get) and build the probes')
  .option('--quiet', 'print only what is done', false)
  .option('--with <purposes>', 'extra tool sets: bench, report (chromium for the HTML report test), vm (qemu and friends for --kernel)', '')
  .action(async (o: { quiet: boolean; with: string }) => {
    const known = ['bench', 'report', 'vm'] as const;
    const extra = o.with.split(',').filter(Boolean) as (typeof known)[number][];
    const bad = extra.filter((e) => !(known as readonly string[]).includes(e));
    if (bad.length) throw new VxError('E_BAD_FLAG', `--with: unknown tool set ${bad.join(', ')} (${known.join(', ')})`);
    await setup({ quiet: o.quiet, purposes: ['cluster', 'build', ...extra] });
  });

program
  .command('down')
  .description('remove a kept or crashed run by id (whatever its provider), or every leftover with --all')
  .argument('[run-id]', 'the run to remove')
  .option('--all', 'remove leftovers of every run (crashed or --keep)', false)
  .option('--out <dir>', 'report directory of the runs', resolve(ROOT, 'reports'))
  .action(async (runId: string | undefined, o: { all: boolean; out: string }) => {
    if (!runId && !o.all) throw new VxError('E_BAD_FLAG', 'give a run id or --all');
    let problems: string[] = [];
    for (const entry of PROVIDERS) {
      const provider = entry.create({ outDir: o.out, keep: false });
      const r = await provider.down(o.all ? undefined : runId);
      if (r.removed.length) console.log(`${entry.name}: removed ${r.removed.join(', ')}`);
      problems = problems.concat(r.problems.map((p) => `${entry.name}: ${p}`));
    }
    // VMs of --kernel runs that a crash left behind (only ours: pid, start time and VM name must match).
    const vms = o.all ? await downGuests() : [];
    if (vms.length) console.log(`vm: removed ${vms.join(', ')}`);
    if (problems.length) {
      console.error(problems.join('\n'));
      process.exitCode = 1;
    }
  });

program
  .command('kernels')
  .description('kernels --kernel can run: cached, and fetchable from Debian with apt')
  .action(() => {
    printKernels();
  });

program
  .command('runs')
  .description('list runs that still exist on this machine (kept with --keep, or left by a crash)')
  .action(async () => {
    let n = 0;
    for (const entry of PROVIDERS) {
      for (const r of await entry.create({ outDir: resolve(ROOT, 'reports'), keep: false }).list()) {
        console.log(`${r.runId.padEnd(10)} ${entry.name.padEnd(6)} ${r.what}`);
        n++;
      }
    }
    if (n === 0) console.log('no runs left on this machine');
  });

program
  .command('bench')
  .description('benchmark the harness: cluster up/down for 3–50 nodes, probe accuracy vs a packet capture,\nprobe headroom vs dnsperf, drop tracer overhead, suite wall time and verdict agreement, VM boot and\nbring-up per kernel; writes reports/bench/<run-id>/bench.{json,md}')
  .option('--quick', 'shorter measurements, fewer repeats, one kernel', false)
  .option('--sections <list>', 'only these sections, comma-separated (lifecycle, cluster, drops, suites, kernels)', (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean))
  .option('--kernel <spec...>', 'kernels for the kernels section (default debian:bookworm debian:bullseye)')
  .option('--out <dir>', 'report directory', resolve(ROOT, 'reports', 'bench'))
  .action(async (o: { quick: boolean; sections?: string[]; kernel?: string[]; out: string }) => {
    const { runBench, BENCH_SECTIONS } = await import('./bench/bench.ts'); // loaded only when benchmarking
    const bad = (o.sections ?? []).filter((x) => !(BENCH_SECTIONS as readonly string[]).includes(x));
    if (bad.length) throw new VxError('E_BAD_FLAG', `--sections: unknown section ${bad.join(', ')} (${BENCH_SECTIONS.join(', ')})`);
    for (const k of o.kernel ?? []) parseKernelSpec(k);
    const { dir, markdown } = await runBench({
      out: o.out,
      quick: o.quick,
      sections: o.sections as (typeof BENCH_SECTIONS)[number][] | undefined,
      kernels: o.kernel,
      log: (s) => process.stderr.write(`${s}\n`),
    });
    console.log(`\n${markdown}\nbench: ${dir}/bench.json`);
  });

// `vxchaos list | head`: a reader that went away is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

installSignalHandlers((s) => process.stderr.write(`${s}\n`));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  await runFinalizers((s) => process.stderr.write(`${s}\n`));
  if (e instanceof VxError) {
    console.error(`vxchaos: ${e.message}`);
    process.exitCode = e.exitCode;
  } else {
    console.error(e);
    process.exitCode = 2;
  }
}
