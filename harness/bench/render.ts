import type { AccuracyRun, BenchResult, LifecycleResult, TargetCheck } from './model.ts';

/** The section that builds the cluster accuracy and headroom share. */
export const CLUSTER_SECTION = 'cluster for accuracy and headroom';

/** Goals of issues 7 and 14. Reported against, never asserted in tests. */
export const GOALS = {
  /** Issue 14: bring-up in batches (issue 7 asked for 3 s and 30 s). */
  up3Ms: 1000,
  down3Ms: 1000,
  up50Ms: 10_000,
  /** "linear": the line explains the up times, and a node costs no more at 25→50 than 1.5× at 3→25. */
  linearR2: 0.98,
  linearCostRatio: 1.5,
  p50ErrorMs: 1,
  stallRelError: 0.01,
  headroomRatio: 0.5,
  fullSuiteS: 180,
  /** Issue 14: the four PR suites --quick back to back, and each full suite. */
  quickSuitesS: 120,
  eachFullSuiteS: 300,
  benchS: 600,
} as const;

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const a = Math.abs(ms);
  if (a >= 1000) return `${(ms / 1000).toFixed(a >= 10_000 ? 1 : 2)} s`;
  if (a >= 10) return `${ms.toFixed(0)} ms`;
  if (a >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(3)} ms`;
}

export const fmtUs = (us: number) => fmtMs(us / 1000);
export const fmtPct = (share: number, digits = 2) => (Number.isFinite(share) ? `${(share * 100).toFixed(digits)} %` : '—');
const fmtRate = (n: number) => (Number.isFinite(n) ? `${Math.round(n).toLocaleString('en-US')}/s` : '—');

/** Per-node up cost between the smallest size, a middle one and the largest (the linearity check). */
function costRatio(l: LifecycleResult): { early: number; late: number; ratio: number } | undefined {
  const s = l.sizes;
  if (s.length < 3) return undefined;
  const first = s[0]!;
  const last = s[s.length - 1]!;
  const mid = s[s.length - 2]!;
  const early = (mid.upMs - first.upMs) / (mid.nodes - first.nodes);
  const late = (last.upMs - mid.upMs) / (last.nodes - mid.nodes);
  return { early, late, ratio: late / early };
}

const stallRuns = (r: BenchResult) => r.accuracy?.runs.filter((x) => x.kind === 'stall' && x.stalls.length > 0) ?? [];

export function evaluateTargets(r: BenchResult): TargetCheck[] {
  const out: TargetCheck[] = [];
  const l = r.lifecycle;
  const size = (n: number) => l?.sizes.find((s) => s.nodes === n);
  const lt = (v: number | undefined, goal: number) => (v === undefined || !Number.isFinite(v) ? null : v < goal);
  const le = (v: number | undefined, goal: number) => (v === undefined || !Number.isFinite(v) ? null : v <= goal);
  const ge = (v: number | undefined, goal: number) => (v === undefined || !Number.isFinite(v) ? null : v >= goal);
  const notMeasured = (...sections: string[]) => r.errors.find((e) => sections.includes(e.section))?.message.split('\n')[0] ?? 'not measured in this run';

  const s3 = size(3);
  out.push({ id: 'lifecycle.up3', what: '3-node cluster up', goal: `< ${fmtMs(GOALS.up3Ms)}`, measured: s3 ? fmtMs(s3.upMs) : '—', pass: lt(s3?.upMs, GOALS.up3Ms), note: s3 ? undefined : notMeasured('lifecycle') });
  out.push({ id: 'lifecycle.down3', what: '3-node cluster down', goal: `< ${fmtMs(GOALS.down3Ms)}`, measured: s3 ? fmtMs(s3.downMs) : '—', pass: lt(s3?.downMs, GOALS.down3Ms), note: s3 ? undefined : notMeasured('lifecycle') });
  const s50 = size(50);
  const skipped50 = l?.skipped.find((s) => s.nodes === 50)?.reason;
  out.push({ id: 'lifecycle.up50', what: '50-node cluster up', goal: `< ${fmtMs(GOALS.up50Ms)}`, measured: s50 ? fmtMs(s50.upMs) : '—', pass: lt(s50?.upMs, GOALS.up50Ms), note: s50 ? undefined : (skipped50 ?? notMeasured('lifecycle')) });
  const cr = l ? costRatio(l) : undefined;
  const linear = l && cr && Number.isFinite(l.upFit.r2) ? l.upFit.r2 >= GOALS.linearR2 && cr.ratio <= GOALS.linearCostRatio : null;
  out.push({
    id: 'lifecycle.linear',
    what: 'up time linear in nodes',
    goal: `R² ≥ ${GOALS.linearR2}, late/early cost per node ≤ ${GOALS.linearCostRatio}`,
    measured: l && cr ? `+${fmtMs(l.upFit.slope)}/node, R² ${l.upFit.r2.toFixed(3)}, ×${cr.ratio.toFixed(2)}` : '—',
    pass: linear,
    note: l && cr ? undefined : notMeasured('lifecycle'),
  });

  const baselines = r.accuracy?.runs.filter((x) => x.kind === 'baseline') ?? [];
  if (baselines.length === 0) out.push({ id: 'accuracy.p50', what: 'probe error at p50', goal: `≤ ${fmtMs(GOALS.p50ErrorMs)}`, measured: '—', pass: null, note: notMeasured('accuracy', CLUSTER_SECTION) });
  for (const b of baselines) {
    const err = Math.abs(b.p50DiffUs) / 1000;
    out.push({ id: `accuracy.p50.${b.libc}`, what: `probe error at p50 (${b.libc})`, goal: `≤ ${fmtMs(GOALS.p50ErrorMs)}`, measured: fmtMs(err), pass: le(err, GOALS.p50ErrorMs) });
  }
  const stalls = stallRuns(r);
  if (stalls.length === 0) out.push({ id: 'accuracy.stall', what: 'probe error on a stall', goal: `≤ ${fmtPct(GOALS.stallRelError, 0)}`, measured: '—', pass: null, note: notMeasured('accuracy', CLUSTER_SECTION) });
  for (const s of stalls) {
    const worst = Math.max(...s.stalls.map((x) => Math.abs(x.relError)));
    const typical = s.stalls.map((x) => x.captureMs).sort((a, b) => a - b)[Math.floor(s.stalls.length / 2)]!;
    out.push({
      id: `accuracy.stall.${s.libc}`,
      what: `probe error on a ${fmtMs(Math.round(typical / 100) * 100)} stall (${s.libc}, worst of ${s.stalls.length})`,
      goal: `≤ ${fmtPct(GOALS.stallRelError, 0)}`,
      measured: fmtPct(worst, 3),
      pass: le(worst, GOALS.stallRelError),
    });
  }

  // The goal is set against the same unbound replica; through the ClusterIP each probe lookup is a new
  // conntrack flow (DNAT, 2 of 3 over VXLAN) while dnsperf's sockets stay pinned: reported, not judged.
  const probes = r.headroom?.runs.filter((h) => h.target === 'replica').flatMap((h) => h.probes) ?? [];
  if (probes.length === 0) out.push({ id: 'headroom', what: 'probe rate vs dnsperf (same replica)', goal: `≥ ${fmtPct(GOALS.headroomRatio, 0)}`, measured: '—', pass: null, note: notMeasured('headroom', CLUSTER_SECTION) });
  for (const p of probes) {
    out.push({ id: `headroom.${p.libc}`, what: `probe rate vs dnsperf, same replica (${p.libc})`, goal: `≥ ${fmtPct(GOALS.headroomRatio, 0)}`, measured: fmtPct(p.ratio, 0), pass: ge(p.ratio, GOALS.headroomRatio) });
  }

  const full = r.suites?.runs.find((s) => !s.quick);
  const fullSkipped = r.suites?.skipped.find((s) => s.what === 'flannel-arp full')?.reason;
  out.push({ id: 'suite.full', what: 'flannel-arp full matrix wall time', goal: `< ${GOALS.fullSuiteS / 60} min`, measured: full ? fmtMs(full.wallS * 1000) : '—', pass: lt(full?.wallS, GOALS.fullSuiteS), note: full ? undefined : (fullSkipped ?? notMeasured('suites')) });
  const s = r.suites;
  if (s?.quickTotalS !== undefined) {
    const n = s.runs.filter((x) => x.quick && x.rep === 1).length;
    out.push({ id: 'suite.quick', what: `${n} suites --quick back to back`, goal: `< ${GOALS.quickSuitesS / 60} min`, measured: fmtMs(s.quickTotalS * 1000), pass: s.quickTotalS < GOALS.quickSuitesS });
  }
  for (const x of s?.runs.filter((y) => !y.quick && y.suite !== 'flannel-arp') ?? []) {
    out.push({ id: `suite.full.${x.suite}`, what: `${x.suite} full matrix wall time`, goal: `< ${GOALS.eachFullSuiteS / 60} min`, measured: fmtMs(x.wallS * 1000), pass: x.wallS < GOALS.eachFullSuiteS });
  }
  if (s?.agreement?.length) {
    const cells = s.agreement.reduce((a, g) => a + g.cells, 0);
    const same = s.agreement.reduce((a, g) => a + g.unanimous, 0);
    const runs = Math.min(...s.agreement.map((g) => g.runs));
    out.push({ id: 'suite.agreement', what: `same verdict in every --quick run (${runs}× each suite)`, goal: 'every cell', measured: `${same} of ${cells} cells`, pass: runs >= 2 ? same === cells : null, note: runs < 2 ? 'fewer than two runs' : undefined });
  }
  out.push({ id: 'bench.total', what: 'whole bench (this run)', goal: `< ${GOALS.benchS / 60} min`, measured: r.durationS ? fmtMs(r.durationS * 1000) : '—', pass: r.durationS ? r.durationS < GOALS.benchS : null, note: r.sections ? `only ${r.sections.join(', ')}` : r.quick ? 'quick run (no full suite)' : undefined });
  return out;
}

/** The bench section a goal belongs to (by its id), so a run of some sections only judges theirs. */
const SECTION_OF: Record<string, string> = { lifecycle: 'lifecycle', accuracy: 'cluster', headroom: 'cluster', suite: 'suites' };
const inRun = (r: BenchResult, t: TargetCheck) => {
  const sec = SECTION_OF[t.id.split('.')[0]!];
  return !r.sections || sec === undefined || r.sections.includes(sec);
};

const mark = (p: boolean | null) => (p === null ? '—' : p ? '✅' : '❌');
const row = (cells: readonly (string | number)[]) => `| ${cells.map((c) => String(c).replaceAll('|', '\\|')).join(' | ')} |`;
const table = (head: readonly string[], rows: readonly (readonly (string | number)[])[], align?: string) =>
  [row(head), align ?? row(head.map(() => '---')), ...rows.map(row)].join('\n');

function accuracyRow(a: AccuracyRun): string[] {
  return [
    a.libc,
    a.kind,
    `${a.compared}/${a.lookups}`,
    `${fmtUs(a.probe.p50Us)} / ${fmtUs(a.capture.p50Us)}`,
    fmtUs(a.p50DiffUs),
    `${fmtUs(a.probe.p99Us)} / ${fmtUs(a.capture.p99Us)}`,
    fmtUs(a.p99DiffUs),
    `${fmtUs(a.perLookupErrorUs.p50)} / ${fmtUs(a.perLookupErrorUs.max)}`,
    String(a.captureDrops),
  ];
}

export function renderMarkdown(r: BenchResult): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`## vxchaos bench ${r.runId}${r.quick ? ' (quick)' : ''}`);
  out.push('');
  out.push(`${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB RAM, kernel ${m.kernel}, ${m.os}, Node ${m.node} — ${r.startedAt}, ${fmtMs(r.durationS * 1000)} in all`);
  if (r.otherRuns.length) {
    out.push('', `⚠️ Other vxchaos runs were active on this machine during the bench (${r.otherRuns.join(', ')}; load average ${r.loadAverage.start.toFixed(1)} at start, ${r.loadAverage.end.toFixed(1)} at end): the figures include their load.`);
  }
  out.push('');
  if (r.sections) out.push(`Sections measured: ${r.sections.join(', ')}.`, '');
  out.push(table(['Measurement', 'Goal', 'Measured', ''], r.targets.filter((t) => inRun(r, t)).map((t) => [t.what, t.goal, t.note ? `${t.measured} (${t.note})` : t.measured, mark(t.pass)])));

  const l = r.lifecycle;
  if (l) {
    out.push('', '### Cluster lifecycle (netns: DNS replica and client pod on every node)', '');
    out.push(table(['nodes', 'pods', 'up', 'down', 'daemons RSS', 'MemAvailable −', 'clients resolving', 'runs'], l.sizes.map((s) => {
      const runs = l.runs.filter((x) => x.nodes === s.nodes);
      const resolving = runs.map((x) => `${x.clientsResolving}/${x.clients}`).join(', ');
      return [s.nodes, runs[0]?.pods ?? '—', fmtMs(s.upMs), fmtMs(s.downMs), `${Math.round(s.rssMiB)} MiB`, `${Math.round(s.memUsedMiB)} MiB`, resolving, s.reps];
    })));
    out.push('');
    out.push(`Growth (least squares): up ${fmtMs(l.upFit.intercept)} + ${fmtMs(l.upFit.slope)}/node (R² ${l.upFit.r2.toFixed(3)}), down ${fmtMs(l.downFit.intercept)} + ${fmtMs(l.downFit.slope)}/node (R² ${l.downFit.r2.toFixed(3)}).` +
      (l.upSegmentsMsPerNode.length ? ` Up cost per added node: ${l.upSegmentsMsPerNode.map((s) => `${s.from}→${s.to}: ${fmtMs(s.msPerNode)}`).join(', ')}.` : ''));
    const steps = [...new Set(l.sizes.flatMap((s) => Object.keys(s.steps)))];
    if (steps.length) {
      out.push('', 'Where the up time goes (median ms per step; kube-proxy, the service endpoints, the upstream DNS and the cluster DNS start together once the pods exist, so their times overlap):', '');
      out.push(table(['step', ...l.sizes.map((s) => `${s.nodes} nodes`)], steps.map((st) => [st, ...l.sizes.map((s) => (s.steps[st] !== undefined ? fmtMs(s.steps[st]) : '—'))])));
    }
    for (const s of l.skipped) out.push('', `Skipped ${s.nodes} nodes: ${s.reason}`);
  }

  const a = r.accuracy;
  if (a) {
    out.push('', '### Probe accuracy (vxprobe vs tcpdump in the client pod: first query → last answer)', '');
    out.push(table(['libc', 'run', 'lookups', 'p50 probe / wire', 'Δp50', 'p99 probe / wire', 'Δp99', 'per-lookup error p50 / max', 'capture drops'], a.runs.map(accuracyRow)));
    const stalls = a.runs.filter((x) => x.stalls.length);
    if (stalls.length) {
      out.push('', 'Injected stalls (first query of every other lookup dropped on the client\'s node):', '');
      out.push(table(['libc', 'stalls', 'wire', 'probe', 'error', 'relative error (worst)'], stalls.map((s) => {
        const worst = s.stalls.reduce((x, y) => (Math.abs(y.relError) > Math.abs(x.relError) ? y : x));
        const span = (v: number[]) => `${fmtMs(Math.min(...v))} – ${fmtMs(Math.max(...v))}`;
        return [s.libc, s.stalls.length, span(s.stalls.map((x) => x.captureMs)), span(s.stalls.map((x) => x.probeMs)), span(s.stalls.map((x) => x.errorMs)), fmtPct(worst.relError, 3)];
      })));
    }
  }

  const h = r.headroom;
  if (h) {
    out.push('', '### Probe headroom (same unbound, same queries in flight)', '');
    out.push(table(['target', 'in flight', 'dnsperf', 'probe', 'lookups', 'probe / dnsperf'], h.runs.flatMap((x) =>
      x.probes.map((p) => [`${x.target} ${x.server}`, x.inFlight, `${fmtRate(x.dnsperf.qps)} q${x.dnsperfRuns.length > 1 ? ` (best of ${x.dnsperfRuns.map((d) => Math.round(d.qps / 1000)).join(' / ')} k)` : ''}`, `${p.libc} ${fmtRate(p.qps)} q`, `${fmtRate(p.lookupsPerS)}${p.errors ? ` (${p.errors} errors)` : ''}`, fmtPct(p.ratio, 0)]),
    )));
    out.push('', 'dnsperf runs before and after the probes; the faster run is the reference. A probe lookup is A + AAAA on a new socket (two queries). Through the ClusterIP each probe lookup is a new conntrack flow (DNAT to any of the replicas, two of three across VXLAN) while each of dnsperf\'s sockets stays pinned to one replica: a different load, so the goal is judged on the replica.');
  }

  const d = r.drops;
  if (d) {
    out.push('', `### Drop tracer overhead (TCP connects a → b over veth, ${d.threads} threads, ${d.durationS} s × ${d.reps}, tracer off / on alternating)`, '');
    out.push(table(['path', 'connects/s off', 'connects/s on', 'slower', 'drops per connect', 'program run time'], d.summary.map((x) => [
      x.path === 'clean' ? 'clean (accepted)' : 'drop-heavy (closed port)',
      fmtRate(x.connectsPerSOff),
      fmtRate(x.connectsPerSOn),
      fmtPct(x.slowdown, 1),
      x.dropsPerConnect.toFixed(2),
      x.nsPerDrop === undefined ? '— (never ran)' : `${Math.round(x.nsPerDrop)} ns per drop`,
    ])));
    out.push('', 'Run time is the kernel\'s own BPF accounting (bpf_enable_stats) over every kfree_skb the program saw, other runs\' drops included; the clean path costs nothing per packet because consume_skb is another tracepoint.');
  }

  const s = r.suites;
  if (s) {
    out.push('', '### Suite wall time (cluster up → every cell → reports → down)', '');
    out.push(table(['suite', 'cells', 'wall', 'verdicts'], s.runs.map((x) => [`${x.suite}${x.quick ? ' --quick' : ''}${x.rep && x.rep > 1 ? ` #${x.rep}` : ''}`, x.cells, fmtMs(x.wallS * 1000), Object.entries(x.verdicts).map(([k, v]) => `${v} ${k}`).join(', ') || '—'])));
    for (const k of s.skipped) out.push('', `Skipped ${k.what}: ${k.reason}`);
    if (s.agreement?.length) {
      out.push('', '### Verdict agreement across repeated --quick runs', '');
      out.push(table(['suite', 'runs', 'cells', 'same verdict every run', 'changed'], s.agreement.map((g) => [g.suite, g.runs, g.cells, g.unanimous, g.changed.map((c) => `${c.cell}: ${c.verdicts.join(' → ')}`).join('; ') || '—'])));
    }
  }

  const k = r.kernels;
  if (k?.runs.length) {
    out.push('', '### Kernels in a qemu guest (boot to a ready agent, then the 3-node cluster up inside it)', '');
    out.push(table(['kernel', 'release', 'accel', 'clocksource', 'VM boot', 'bootGuest', '3-node up', 'clients resolving', 'down', 'VM stop'], k.runs.map((x) => [
      x.spec,
      x.release ?? '—',
      x.accel ?? '—',
      x.clocksource ?? '—',
      x.bootMs !== undefined ? fmtMs(x.bootMs) : '—',
      x.bootWallMs !== undefined ? fmtMs(x.bootWallMs) : '—',
      x.upMs !== undefined ? fmtMs(x.upMs) : '—',
      x.resolving ? `${x.resolving.ok}/${x.resolving.of}` : '—',
      x.downMs !== undefined ? fmtMs(x.downMs) : '—',
      x.error ? `✗ ${x.error}` : x.stopMs !== undefined ? fmtMs(x.stopMs) : '—',
    ])));
    const steps = [...new Set(k.runs.flatMap((x) => Object.keys(x.steps ?? {})))];
    if (steps.length) {
      out.push('', 'Where the in-guest up time goes (ms per step):', '');
      out.push(table(['step', ...k.runs.map((x) => x.release ?? x.spec)], steps.map((st) => [st, ...k.runs.map((x) => (x.steps?.[st] !== undefined ? fmtMs(x.steps[st]) : '—'))])));
    }
    out.push('', 'VM boot: qemu start → the guest agent\'s first answer. bootGuest: the whole call, with the initramfs and, where /dev/kvm opens but runs no guest (nested virtualization), the KVM attempt given up before TCG.');
    if (k.runs.some((x) => x.accel === 'tcg')) {
      out.push('', 'TCG: qemu emulates the CPU (no usable /dev/kvm), so boot and bring-up are many times slower than on the host; with KVM the guest runs at near-native speed.');
    }
  }

  if (r.errors.length) {
    out.push('', '### Errors', '');
    for (const e of r.errors) out.push(`- ${e.section}: ${e.message.split('\n')[0]}`);
  }
  return `${out.join('\n')}\n`;
}
