import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { prepareSuite } from '../cells.ts';
import { CLUSTERS_DIR } from '../config/suite.ts';
import { loadTopology } from '../config/topology.ts';
import { setup } from '../doctor.ts';
import { InterruptedError, VxError } from '../errors.ts';
import { addFinalizer } from '../exec/finalizers.ts';
import { shell } from '../exec/shell.ts';
import { runProbe } from '../measure/probe.ts';
import type { Progress } from '../progress.ts';
import { addPod } from '../providers/netns/cni.ts';
import { downAll, Ledger, NETNS_PREFIX } from '../providers/netns/ledger.ts';
import { LocalHost, procStart } from '../providers/netns/local-host.ts';
import { addNamespaces, netnsName } from '../providers/netns/network.ts';
import { NetnsClientPod, NetnsNode, type NetnsContext } from '../providers/netns/node.ts';
import { NetnsProvider, PROBE_BINARIES } from '../providers/netns/provider.ts';
import type { Cluster, ClientPod, Libc } from '../providers/provider.ts';
import { newRunId, runSuite } from '../runner.ts';
import { bootGuest, type Guest } from '../vm/index.ts';
import { verdictAgreement } from './agreement.ts';
import { benchDrops } from './drops.ts';
import { startCapture, STALL_TABLE, stallDrops, stallRuleset, withNameserver } from './capture.ts';
import {
  BENCH_SCHEMA_VERSION,
  type AccuracyResult,
  type AccuracyRun,
  type BenchResult,
  type HeadroomResult,
  type HeadroomRun,
  type KernelRun,
  type KernelsResult,
  type LifecycleResult,
  type LifecycleRun,
  type Machine,
  type SuitesResult,
} from './model.ts';
import { dnsPackets, parsePcap, sequentialLookups } from './pcap.ts';
import { CLUSTER_SECTION, evaluateTargets, fmtMs, renderMarkdown } from './render.ts';
import { linearFit, median, parseDnsperf, percentile } from './stats.ts';
import { nodeTopology } from './topology.ts';

/** The bench's sections, in the order a whole bench runs them. */
export const BENCH_SECTIONS = ['lifecycle', 'cluster', 'drops', 'suites', 'kernels'] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];

/** Kernels the kernels section boots (issue 12); --quick boots the first only. */
export const BENCH_KERNELS = ['debian:bookworm', 'debian:bullseye'] as const;

export interface BenchOptions {
  /** Parent directory: the run writes <out>/<run-id>/bench.json and bench.md. */
  out: string;
  /** Shorter measurements and no full suite (the full flannel-arp matrix takes minutes). */
  quick?: boolean;
  /** Only these sections (default: all); `cluster` is accuracy and headroom on one cluster. */
  sections?: readonly BenchSection[];
  /** --kernel specs for the kernels section (default BENCH_KERNELS, or its first under --quick). */
  kernels?: readonly string[];
  log: (s: string) => void;
}

/** The CPU time counters of /proc/stat's first line: [busy, total] jiffies. */
function cpuJiffies(): [number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  const total = f.reduce((a, b) => a + b, 0);
  return [total - idle, total];
}

/**
 * Waits until the machine is quiet (under 15 % of its CPU busy over half a second), at most maxMs. The kernel
 * frees a deleted namespace's devices and tables after `ip netns del` returns; a build or measurement started
 * meanwhile pays for that work (seen: +0.65 s on the 50-node fabric after the 25-node teardown, and the probes'
 * headroom a fifth lower right after the 50-node one). Returns how long it waited.
 */
export async function untilQuiet(maxMs = 15_000, busyShare = 0.15): Promise<number> {
  const t0 = performance.now();
  let [busy, total] = cpuJiffies();
  while (performance.now() - t0 < maxMs) {
    await sleep(500);
    const [b, t] = cpuJiffies();
    const share = t > total ? (b - busy) / (t - total) : 0;
    [busy, total] = [b, t];
    if (share < busyShare) break;
  }
  return Math.round(performance.now() - t0);
}

/** Lifecycle sizes and how often each is built (the small ones are cheap; their median is the figure). */
export const LIFECYCLE_SIZES: readonly { nodes: number; reps: number }[] = [
  { nodes: 3, reps: 3 },
  { nodes: 10, reps: 2 },
  { nodes: 25, reps: 1 },
  { nodes: 50, reps: 1 },
];

const HEADROOM_THREADS = 16;
const LIBCS: readonly Libc[] = ['musl', 'glibc'];

function memAvailableMiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Resident memory of the daemons a run recorded in its ledger (unbound, dnsmasq, …). */
async function ledgerRssMiB(runId: string): Promise<number> {
  let kb = 0;
  for (const e of await Ledger.load(new LocalHost(), runId)) {
    if (e.kind !== 'pid' || procStart(e.pid) !== e.start) continue;
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${e.pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* exited */
    }
  }
  return kb / 1024;
}

/** Run ids of vxchaos namespaces that are not this bench's. */
async function otherRuns(benchId: string): Promise<string[]> {
  const r = await shell(['ip', 'netns', 'list'], { nothrow: true, timeoutMs: 5000 });
  const ids = r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(NETNS_PREFIX) && !n.startsWith(`${NETNS_PREFIX}${benchId}-`))
    .map((n) => n.slice(NETNS_PREFIX.length).split('-')[0]!);
  return [...new Set(ids)];
}

async function runNamespaces(runId: string): Promise<string[]> {
  const r = await shell(['ip', 'netns', 'list'], { nothrow: true, timeoutMs: 5000 });
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${NETNS_PREFIX}${runId}-`));
}

/** A name every cluster DNS serves, fully qualified: one DNS round per lookup, no search list. */
const dnsName = (c: Cluster) => `kube-dns.kube-system.svc.${c.topology.dns.domain}.`;

async function machine(): Promise<Machine> {
  const os = /PRETTY_NAME="?([^"\n]+)"?/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  const pkgs = ['tcpdump', 'dnsperf', 'unbound', 'dnsmasq-base', 'iproute2', 'iptables', 'nftables', 'conntrack', 'containernetworking-plugins', 'libc6', 'musl'];
  const q = await shell(['dpkg-query', '-W', '-f', '${Package} ${Version}\\n', ...pkgs], { nothrow: true });
  const tools: Record<string, string> = {};
  for (const line of q.stdout.split('\n')) {
    const [pkg, ver] = line.split(' ');
    if (pkg && ver) tools[pkg] = ver;
  }
  return {
    hostname: hostname(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os,
    node: process.version,
    tools,
  };
}

/** Builds a cluster under its own run id and removes it (also on error or Ctrl-C). */
async function withCluster<T>(runId: string, fn: () => Promise<T>): Promise<T> {
  const remove = addFinalizer(`bench ${runId}`, () => downAll(undefined, runId));
  try {
    return await fn();
  } finally {
    await downAll(undefined, runId);
    remove();
  }
}

/**
 * One client pod on every node the provider did not put one on, made as the provider makes pods (CNI
 * bridge ADD in the node, kubelet's resolv.conf) and recorded in the run's ledger, so downAll removes them.
 * musl and glibc alternate by node.
 */
async function addNodeClients(cluster: Cluster, runId: string): Promise<ClientPod[]> {
  const first = Object.values(cluster.clients)[0];
  if (!first) throw new VxError('E_BENCH', 'the lifecycle cluster has no client pod');
  const files = await Promise.all(['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf'].map(async (f) => [f, await first.readFile(f)] as const));
  const host = new LocalHost();
  const ctx: NetnsContext = { host, ledger: await Ledger.open(host, runId) };
  const others = [...cluster.nodes.entries()].filter(([, node]) => node.name !== first.node);
  for (const [, node] of others) if (!(node instanceof NetnsNode)) throw new VxError('E_BENCH', 'the lifecycle bench runs on the netns provider only');
  // As the provider makes pods: every namespace in one batch, then each node's pod at once (own bridge, own IPAM).
  await addNamespaces(ctx, others.map(([, node]) => netnsName(runId, `${node.name}-client`)));
  return Promise.all(
    others.map(async ([i, node]) => {
      const libc: Libc = i % 2 === 0 ? 'musl' : 'glibc';
      const name = `client-${node.name}`;
      const netns = netnsName(runId, `${node.name}-client`);
      const { ip } = await addPod(ctx, cluster.topology, node as NetnsNode, netns, name, { namespaceMade: true });
      const pod = new NetnsClientPod(name, netns, ctx, node.name, ip, libc, [PROBE_BINARIES[libc]]);
      await Promise.all(files.map(([f, content]) => pod.writeFile(f, content)));
      return pod;
    }),
  );
}

/** How many clients resolve a name through the ClusterIP (one lookup each, 8 at a time). */
async function countResolving(clients: readonly ClientPod[], name: string): Promise<number> {
  let ok = 0;
  for (let i = 0; i < clients.length; i += 8) {
    const batch = clients.slice(i, i + 8);
    const outs = await Promise.all(batch.map((c) => runProbe(c, { targets: [name], threads: 1, count: 1 }).catch(() => undefined)));
    ok += outs.filter((o) => o?.samples[0]?.result === 'OK').length;
  }
  return ok;
}

/** "nodes (50)" and "nodes (3)" are one step: drop the counts the provider puts in its step names. */
export const stepName = (s: string) => s.replace(/ \(\d+[^)]*\)/, '');

/** 1. Cluster lifecycle: up and down of N-node clusters with a DNS replica and a client on every node. */
export async function benchLifecycle(provider: NetnsProvider, benchId: string, log: (s: string) => void, sizes = LIFECYCLE_SIZES): Promise<LifecycleResult> {
  const runs: LifecycleRun[] = [];
  const skipped: LifecycleResult['skipped'] = [];
  for (const { nodes, reps } of sizes) {
    // Memory guard: extrapolate from the largest size built so far, keep 20 % of what is available.
    const prev = runs.at(-1);
    if (prev) {
      const needMiB = (Math.max(prev.memUsedMiB, prev.rssMiB) / prev.nodes) * nodes * 1.5;
      const availMiB = memAvailableMiB();
      if (needMiB > availMiB * 0.8) {
        skipped.push({ nodes, reason: `needs about ${Math.round(needMiB)} MiB (from ${prev.nodes} nodes), ${Math.round(availMiB)} MiB available` });
        log(`  ! ${nodes} nodes skipped: ${skipped.at(-1)!.reason}`);
        continue;
      }
    }
    const topo = nodeTopology(nodes);
    for (let rep = 1; rep <= reps; rep++) {
      const runId = `${benchId}-n${nodes}r${rep}`;
      // The previous build's teardown goes on in the kernel: measure on a quiet machine.
      if (runs.length) await untilQuiet();
      // A size that fails is reported with its error; the sizes measured before it still count.
      const failed = await withCluster(runId, async () => {
        const memBefore = memAvailableMiB();
        const steps: Record<string, number> = {};
        const t0 = performance.now();
        const cluster = await provider.up(topo, { runId, clients: ['musl'], onStep: (s, state, ms) => state === 'done' && ms !== undefined && (steps[s] = ms) });
        const t1 = performance.now();
        const extra = await addNodeClients(cluster, runId);
        const t2 = performance.now();
        const memAfterUp = memAvailableMiB();
        const memUsedMiB = memBefore - memAfterUp;
        const rssMiB = await ledgerRssMiB(runId);
        const clients = [cluster.clients.musl!, ...extra];
        const clientsResolving = await countResolving(clients, dnsName(cluster));
        const namespaces = (await runNamespaces(runId)).length;
        const t3 = performance.now();
        await downAll(undefined, runId);
        const downMs = performance.now() - t3;
        const leftovers = await runNamespaces(runId);
        const run: LifecycleRun = {
          nodes,
          rep,
          runId,
          pods: cluster.dnsPods.length + topo.services.reduce((a, s) => a + s.endpoints.length, 0) + clients.length,
          namespaces,
          upMs: Math.round(t2 - t0),
          providerUpMs: Math.round(t1 - t0),
          clientsMs: Math.round(t2 - t1),
          downMs: Math.round(downMs),
          steps,
          clients: clients.length,
          clientsResolving,
          memUsedMiB: Math.round(memUsedMiB),
          rssMiB: Math.round(rssMiB),
          memAvailableAfterUpMiB: Math.round(memAfterUp),
          leftovers,
        };
        runs.push(run);
        log(`  ${nodes} nodes (${run.pods} pods, ${namespaces} namespaces): up ${fmtMs(run.upMs)} (provider ${fmtMs(run.providerUpMs)} + clients ${fmtMs(run.clientsMs)}), down ${fmtMs(run.downMs)}, ${clientsResolving}/${clients.length} clients resolve, daemons ${run.rssMiB} MiB RSS, MemAvailable −${run.memUsedMiB} MiB (${run.memAvailableAfterUpMiB} MiB left)`);
        if (leftovers.length) throw new VxError('E_BENCH_LEFTOVER', `down left namespaces behind: ${leftovers.join(' ')}`);
      }).then(
        () => undefined,
        (e: Error) => {
          if (e instanceof InterruptedError) throw e;
          return e;
        },
      );
      if (failed) {
        skipped.push({ nodes, reason: `run ${runId} failed: ${failed.message.split('\n')[0]}` });
        log(`  ✗ ${nodes} nodes: ${failed.message}`);
        break;
      }
    }
  }
  const sizesOut = [...new Set(runs.map((r) => r.nodes))].map((n) => {
    const rs = runs.filter((r) => r.nodes === n);
    const steps: Record<string, number> = {};
    for (const step of new Set(rs.flatMap((r) => Object.keys(r.steps)))) steps[stepName(step)] = median(rs.map((r) => r.steps[step] ?? 0));
    steps['client pods on the other nodes (bench)'] = median(rs.map((r) => r.clientsMs));
    return { nodes: n, reps: rs.length, upMs: median(rs.map((r) => r.upMs)), downMs: median(rs.map((r) => r.downMs)), memUsedMiB: median(rs.map((r) => r.memUsedMiB)), rssMiB: median(rs.map((r) => r.rssMiB)), steps };
  });
  const xs = sizesOut.map((s) => s.nodes);
  return {
    runs,
    sizes: sizesOut,
    upFit: linearFit(xs, sizesOut.map((s) => s.upMs)),
    downFit: linearFit(xs, sizesOut.map((s) => s.downMs)),
    upSegmentsMsPerNode: sizesOut.slice(1).map((s, i) => ({ from: sizesOut[i]!.nodes, to: s.nodes, msPerNode: (s.upMs - sizesOut[i]!.upMs) / (s.nodes - sizesOut[i]!.nodes) })),
    skipped,
  };
}

/**
 * One sequential probe run (one thread: lookups never overlap) under tcpdump in the same pod; the k-th
 * lookup on the wire is the probe's k-th sample.
 */
async function accuracyRun(client: ClientPod, kind: AccuracyRun['kind'], name: string, count: number, dir: string): Promise<AccuracyRun> {
  const file = join(dir, 'capture', `${client.libc}-${kind}.pcap`);
  const cap = await startCapture(client, file);
  let probe;
  let stats;
  try {
    probe = await runProbe(client, { targets: [name], threads: 1, count });
  } finally {
    stats = await cap.stop();
  }
  const wire = sequentialLookups(dnsPackets(parsePcap(readFileSync(file))), client.ip);
  const samples = [...probe.samples].sort((a, b) => a.startUs - b.startUs);
  if (wire.length !== samples.length) {
    throw new VxError('E_BENCH_MATCH', `${client.libc} ${kind}: the probe made ${samples.length} lookups, the capture shows ${wire.length} (tcpdump dropped ${stats.dropped ?? '?'})`);
  }
  const pairs = samples.map((s, i) => ({ s, w: wire[i]! })).filter((p) => p.s.result === 'OK' && p.w.complete);
  const offsets = pairs.map((p) => p.w.startNs / 1000 - p.s.startUs);
  const probeLat = pairs.map((p) => p.s.latencyUs);
  const wireLat = pairs.map((p) => p.w.durationUs);
  const err = pairs.map((p) => p.s.latencyUs - p.w.durationUs);
  const pct = (v: number[]) => ({ p50Us: percentile(v, 50), p99Us: percentile(v, 99), maxUs: Math.max(...v) });
  return {
    libc: client.libc,
    kind,
    target: name,
    lookups: samples.length,
    compared: pairs.length,
    captureDrops: stats.dropped ?? -1,
    pcap: relative(dir, file),
    probe: pct(probeLat),
    capture: pct(wireLat),
    p50DiffUs: percentile(probeLat, 50) - percentile(wireLat, 50),
    p99DiffUs: percentile(probeLat, 99) - percentile(wireLat, 99),
    perLookupErrorUs: { min: Math.min(...err), p50: percentile(err, 50), p99: percentile(err, 99), max: Math.max(...err) },
    alignJitterUs: offsets.length ? Math.max(...offsets) - Math.min(...offsets) : Number.NaN,
    // A stall is a lookup the wire shows took longer than a second (the resolver's retry timer fired).
    stalls: pairs
      .filter((p) => p.w.durationUs > 1_000_000)
      .map((p) => ({ captureMs: p.w.durationUs / 1000, probeMs: p.s.latencyUs / 1000, errorMs: (p.s.latencyUs - p.w.durationUs) / 1000, relError: (p.s.latencyUs - p.w.durationUs) / p.w.durationUs })),
  };
}

const flushConntrack = (c: Cluster) => Promise.all(c.nodes.map((n) => n.exec(['conntrack', '-F'], { nothrow: true })));

/** 2. Probe accuracy: per-lookup latency vs the packet capture, plain and with injected multi-second stalls. */
export async function benchAccuracy(cluster: Cluster, dir: string, quick: boolean, log: (s: string) => void): Promise<AccuracyResult> {
  mkdirSync(join(dir, 'capture'), { recursive: true });
  const name = dnsName(cluster);
  const clients = LIBCS.map((l) => cluster.clients[l]).filter((c): c is ClientPod => c !== undefined);
  const runs: AccuracyRun[] = [];
  for (const client of clients) {
    await flushConntrack(cluster);
    const run = await accuracyRun(client, 'baseline', name, quick ? 1000 : 3000, dir);
    runs.push(run);
    log(`  ${client.libc}: ${run.compared} lookups, p50 probe ${fmtMs(run.probe.p50Us / 1000)} vs wire ${fmtMs(run.capture.p50Us / 1000)}, p99 ${fmtMs(run.probe.p99Us / 1000)} vs ${fmtMs(run.capture.p99Us / 1000)}`);
  }
  // Stalls: both clients at once (one rule and counter per client), each lookup of theirs on its own socket.
  const rule = stallRuleset(clients.map((c) => c.ip));
  const nodes = [...new Set(clients.map((c) => c.node))].map((n) => cluster.node(n));
  await flushConntrack(cluster);
  try {
    for (const n of nodes) await n.exec(['nft', '-f', '-'], { input: rule });
    const stallRuns = await Promise.all(clients.map((c) => accuracyRun(c, 'stall', name, quick ? 4 : 8, dir)));
    const drops: Record<string, number> = {};
    for (const n of nodes) Object.assign(drops, stallDrops((await n.exec(['nft', 'list', 'table', 'ip', STALL_TABLE])).stdout));
    for (const [i, r] of stallRuns.entries()) {
      r.injectedDrops = drops[clients[i]!.ip] ?? 0;
      runs.push(r);
      const worst = r.stalls.reduce((a, b) => Math.max(a, Math.abs(b.relError)), 0);
      log(`  ${r.libc} stalls: ${r.stalls.length} of ${r.lookups} lookups (${r.injectedDrops} queries dropped), wire ${r.stalls.map((s) => fmtMs(s.captureMs)).join(', ')}; worst error ${(worst * 100).toFixed(3)} %`);
    }
  } finally {
    for (const n of nodes) await n.exec(['nft', 'delete', 'table', 'ip', STALL_TABLE], { nothrow: true });
  }
  return { runs, stallRule: rule };
}

/**
 * 3. Probe headroom: dnsperf and the probe from the same client pod against the same unbound (the replica
 * on the client's node, then the ClusterIP), with the same number of queries in flight.
 */
export async function benchHeadroom(cluster: Cluster, dir: string, quick: boolean, log: (s: string) => void): Promise<HeadroomResult> {
  const threads = HEADROOM_THREADS;
  const inFlight = threads * 2; // a lookup sends A and AAAA at once
  const durationS = quick ? 3 : 5;
  const name = dnsName(cluster);
  const clients = LIBCS.map((l) => cluster.clients[l]).filter((c): c is ClientPod => c !== undefined);
  const from = clients[0];
  if (!from) throw new VxError('E_BENCH', 'no client pod for the headroom bench');
  const replica = cluster.dnsPods.find((p) => p.node === from.node) ?? cluster.dnsPods[0];
  if (!replica) throw new VxError('E_BENCH', 'no DNS replica');
  const queries = join(dir, 'dnsperf-queries.txt');
  writeFileSync(queries, `${name} A\n`);
  const runs: HeadroomRun[] = [];
  for (const [target, server] of [['replica', replica.ip], ['clusterIP', cluster.topology.dns.clusterIP]] as const) {
    const dnsperfRun = async () => {
      await flushConntrack(cluster);
      const argv = ['dnsperf', '-s', server, '-d', queries, '-c', String(threads), '-q', String(inFlight), '-l', String(durationS), '-t', '2'];
      const r = await from.exec(argv, { timeoutMs: (durationS + 30) * 1000 });
      const stats = parseDnsperf(r.stdout);
      if (!stats) throw new VxError('E_BENCH_DNSPERF', `dnsperf printed no statistics: ${argv.join(' ')}\n${r.stdout.slice(-500)}${r.stderr.slice(-500)}`);
      return stats;
    };
    const dnsperf = await dnsperfRun();
    const run: HeadroomRun = { target, server, inFlight, durationS, dnsperf, dnsperfRuns: [dnsperf], probes: [] };
    for (const client of clients) {
      const original = await client.readFile('/etc/resolv.conf');
      if (target === 'replica') await client.writeFile('/etc/resolv.conf', withNameserver(original, server));
      try {
        await flushConntrack(cluster);
        const out = await runProbe(client, { targets: [name], threads, durationS });
        const wallS = out.wallUs / 1e6;
        const lookupsPerS = out.samples.length / wallS;
        run.probes.push({
          libc: client.libc,
          lookups: out.samples.length,
          errors: out.samples.filter((s) => s.result !== 'OK').length,
          wallS,
          lookupsPerS,
          qps: lookupsPerS * 2,
          ratio: (lookupsPerS * 2) / dnsperf.qps,
        });
      } finally {
        await client.writeFile('/etc/resolv.conf', original);
      }
    }
    // dnsperf again after the probes: a machine that got busier in between must not flatter the probe.
    const again = await dnsperfRun();
    run.dnsperfRuns.push(again);
    if (again.qps > run.dnsperf.qps) {
      run.dnsperf = again;
      for (const p of run.probes) p.ratio = p.qps / again.qps;
    }
    runs.push(run);
    log(`  ${target} ${server}: dnsperf ${run.dnsperfRuns.map((d) => Math.round(d.qps)).join(' / ')} q/s; ${run.probes.map((p) => `${p.libc} ${Math.round(p.qps)} q/s (${Math.round(p.ratio * 100)} %)`).join(', ')}`);
  }
  return { runs };
}

/**
 * 5. Per kernel: boot a qemu guest on it (Guest.bootMs: qemu start → agent ready), bring the 3-node cluster
 * up inside it as the lifecycle section does on the host, tear it down, power the guest off. A kernel that
 * fails is reported with the step that failed; the next kernel still runs.
 */
export async function benchKernels(benchId: string, specs: readonly string[], log: (s: string) => void): Promise<KernelsResult> {
  const runs: KernelRun[] = [];
  for (const [i, spec] of specs.entries()) {
    const run: KernelRun = { spec };
    runs.push(run);
    const runId = `${benchId}-k${i}`;
    let guest: Guest | undefined;
    let provider: NetnsProvider | undefined;
    let step = 'boot';
    try {
      const tb = performance.now();
      guest = await bootGuest({ kernel: spec, log: (l) => log(`    ${l}`) });
      run.bootWallMs = Math.round(performance.now() - tb);
      Object.assign(run, { release: guest.kernel.release, source: guest.kernel.source, accel: guest.accel, clocksource: guest.kernel.clocksource, bootMs: guest.bootMs });
      step = 'cluster up';
      provider = new NetnsProvider({ host: guest.host });
      await provider.preflight();
      const steps: Record<string, number> = {};
      const t0 = performance.now();
      const cluster = await provider.up(loadTopology(join(CLUSTERS_DIR, 'three-node.yaml')), { runId, clients: [...LIBCS], onStep: (st, state, ms) => state === 'done' && ms !== undefined && (steps[stepName(st)] = ms) });
      run.upMs = Math.round(performance.now() - t0);
      run.steps = steps;
      step = 'lookups';
      const clients = LIBCS.map((l) => cluster.clients[l]).filter((c): c is ClientPod => c !== undefined);
      run.resolving = { ok: await countResolving(clients, dnsName(cluster)), of: clients.length };
      step = 'cluster down';
      const t1 = performance.now();
      const down = await provider.down(runId);
      run.downMs = Math.round(performance.now() - t1);
      if (down.problems.length) throw new VxError('E_BENCH', down.problems.join('; '));
      run.leftovers = (await provider.list()).map((r) => `${r.runId} (${r.what})`);
      if (run.leftovers.length) throw new VxError('E_BENCH_LEFTOVER', `down left runs behind in the guest: ${run.leftovers.join(', ')}`);
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      run.error = `${step}: ${(e as Error).message.split('\n')[0]}`;
      log(`  ✗ ${spec}: ${run.error}`);
      // Best effort: the guest's memory goes with it anyway.
      if (provider && run.downMs === undefined) await provider.down(runId).catch(() => undefined);
    } finally {
      if (guest) {
        const t2 = performance.now();
        await guest.stop();
        run.stopMs = Math.round(performance.now() - t2);
      }
    }
    if (!run.error) {
      log(`  ${spec} (${run.release}, ${run.accel}, clocksource ${run.clocksource}): boot ${fmtMs(run.bootMs!)} (bootGuest ${fmtMs(run.bootWallMs!)}), 3-node cluster up ${fmtMs(run.upMs!)}, ${run.resolving!.ok}/${run.resolving!.of} clients resolve, down ${fmtMs(run.downMs!)}, VM stop ${fmtMs(run.stopMs!)}`);
    }
  }
  return { runs };
}

/** The suites a PR runs, timed and repeated by the bench. */
export const BENCH_SUITES = ['flannel-arp', 'checksum-offload', 'dead-upstream', 'conntrack-race'] as const;

/** How often each suite runs --quick: verdict agreement needs at least two. */
export const QUICK_REPS = { quick: 2, full: 3 } as const;

/**
 * 4. Suite wall time and verdict agreement: each PR suite --quick several times (the first runs back to back
 * give the PR's wall time), and each full matrix once unless the bench is quick.
 */
export async function benchSuites(provider: NetnsProvider, benchId: string, dir: string, quick: boolean, log: (s: string) => void, suites: readonly string[] = BENCH_SUITES): Promise<SuitesResult> {
  const progress: Progress = {
    step: () => undefined,
    done: (n, ms) => log(`    ✓ ${n}${ms !== undefined ? ` (${ms} ms)` : ''}`),
    info: (m) => log(`    ${m}`),
    warn: (m) => log(`    ! ${m}`),
  };
  const result: SuitesResult = { runs: [], skipped: [] };
  const reps = quick ? QUICK_REPS.quick : QUICK_REPS.full;
  const once = async (name: string, q: boolean, rep: number) => {
    const prepared = prepareSuite(name);
    const runId = `${benchId}-${name.replace(/[^a-z0-9]/g, '').slice(0, 6)}${q ? 'q' : 'f'}${rep}`;
    const outDir = join(dir, 'suites');
    const t0 = performance.now();
    const { matrix } = await runSuite({ prepared, provider, quick: q, keep: false, outDir, progress, runId });
    const wallS = (performance.now() - t0) / 1000;
    const verdicts: Record<string, number> = {};
    const cellVerdicts: Record<string, string> = {};
    for (const c of matrix.cells) {
      verdicts[c.verdict] = (verdicts[c.verdict] ?? 0) + 1;
      cellVerdicts[`${c.client}${c.name ? ` (${c.name})` : ''} × ${c.fault === 'none' ? 'none' : `${c.fault}(${c.faultMode})`} × ${c.mitigation}`] = c.verdict;
    }
    result.runs.push({ suite: name, quick: q, rep, runId, wallS: Math.round(wallS * 10) / 10, cells: matrix.cells.length, failed: matrix.failed, verdicts, cellVerdicts, reportDir: relative(dir, join(outDir, runId)) });
    log(`  ${name}${q ? ' --quick' : ''} #${rep}: ${matrix.cells.length} cells in ${fmtMs(wallS * 1000)}`);
  };
  // Round by round, so the first round is the four suites back to back and a slow machine moment hits every suite alike.
  for (let rep = 1; rep <= reps; rep++) for (const name of suites) await once(name, true, rep);
  const firstRound = result.runs.filter((r) => r.quick && r.rep === 1);
  result.quickTotalS = Math.round(firstRound.reduce((a, r) => a + r.wallS, 0) * 10) / 10;
  result.agreement = verdictAgreement(result.runs);
  for (const name of suites) {
    if (quick) result.skipped.push({ what: `${name} full`, reason: 'bench --quick' });
    else await once(name, false, 1);
  }
  return result;
}

/** `vxchaos bench`: every measurement of issue 7 in one run; writes bench.json and bench.md. */
export async function runBench(opts: BenchOptions): Promise<{ dir: string; markdown: string; result: BenchResult }> {
  const log = opts.log;
  const quick = opts.quick ?? false;
  const wanted = new Set<BenchSection>(opts.sections ?? BENCH_SECTIONS);
  const only = (s: BenchSection, fn: () => Promise<void>) => (wanted.has(s) ? fn() : Promise.resolve());
  const hostSections = BENCH_SECTIONS.filter((s) => s !== 'kernels' && wanted.has(s));
  await setup({ quiet: true, purposes: ['cluster', 'build', ...(hostSections.length ? (['bench'] as const) : []), ...(wanted.has('kernels') ? (['vm'] as const) : [])] });
  const provider = new NetnsProvider();
  await provider.preflight();
  const benchId = newRunId();
  const dir = join(opts.out, benchId);
  mkdirSync(dir, { recursive: true });
  const started = new Date();
  const t0 = performance.now();
  const result: BenchResult = {
    schemaVersion: BENCH_SCHEMA_VERSION,
    runId: benchId,
    startedAt: started.toISOString(),
    durationS: 0,
    quick,
    machine: await machine(),
    loadAverage: { start: loadavg()[0]!, end: Number.NaN },
    otherRuns: await otherRuns(benchId),
    errors: [],
    targets: [],
    ...(opts.sections ? { sections: [...wanted] } : {}),
  };
  const save = () => {
    result.durationS = Math.round((performance.now() - t0) / 100) / 10;
    result.loadAverage.end = loadavg()[0]!;
    result.targets = evaluateTargets(result);
    writeFileSync(join(dir, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  };
  // A section that fails is reported as such; the others still run. Ctrl-C stops the whole bench.
  const section = async (name: string, fn: () => Promise<void>) => {
    log(`${name}…`);
    for (const id of await otherRuns(benchId)) if (!result.otherRuns.includes(id)) result.otherRuns.push(id);
    try {
      await fn();
    } catch (e) {
      if (e instanceof InterruptedError) throw e;
      result.errors.push({ section: name, message: (e as Error).message });
      log(`  ✗ ${name}: ${(e as Error).message}`);
    } finally {
      save();
    }
  };
  const remove = addFinalizer(`bench ${benchId}`, () => downAll(undefined, benchId));
  try {
    log(`bench ${benchId}: ${result.machine.cpus} CPUs, ${result.machine.memGiB} GiB, kernel ${result.machine.kernel}${quick ? ' (quick)' : ''} → ${dir}`);
    await only('lifecycle', () => section('lifecycle', async () => {
      result.lifecycle = await benchLifecycle(provider, benchId, log);
      await untilQuiet();
    }));
    const runId = `${benchId}-acc`;
    await only('cluster', () => section(CLUSTER_SECTION, () =>
      withCluster(runId, async () => {
        const cluster = await provider.up(loadTopology(join(CLUSTERS_DIR, 'three-node.yaml')), { runId, clients: [...LIBCS] });
        Object.assign(result.machine.tools, await cluster.describe());
        await section('accuracy', async () => {
          result.accuracy = await benchAccuracy(cluster, dir, quick, log);
        });
        await section('headroom', async () => {
          result.headroom = await benchHeadroom(cluster, dir, quick, log);
        });
      }),
    ));
    await only('drops', () => section('drops', async () => {
      result.drops = await benchDrops(benchId, quick, log);
    }));
    await only('suites', () => section('suites', async () => {
      result.suites = await benchSuites(provider, benchId, dir, quick, log);
    }));
    await only('kernels', () => section('kernels', async () => {
      result.kernels = await benchKernels(benchId, opts.kernels ?? (quick ? BENCH_KERNELS.slice(0, 1) : BENCH_KERNELS), log);
    }));
  } finally {
    await downAll(undefined, benchId);
    remove();
  }
  save();
  const markdown = renderMarkdown(result);
  writeFileSync(join(dir, 'bench.md'), markdown);
  return { dir, markdown, result };
}
