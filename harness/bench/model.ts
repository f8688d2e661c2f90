import type { Libc } from '../providers/provider.ts';
import type { DnsperfStats, LinearFit } from './stats.ts';

/** bench.json — fields may be added; renaming or dropping one bumps this. */
export const BENCH_SCHEMA_VERSION = 1;

export interface Machine {
  hostname: string;
  cpus: number;
  cpuModel: string;
  memGiB: number;
  kernel: string;
  os: string;
  node: string;
  /** Debian package versions of the tools the figures depend on. */
  tools: Record<string, string>;
}

export interface LifecycleRun {
  nodes: number;
  rep: number;
  runId: string;
  /** DNS replicas + the web endpoint + one client per node. */
  pods: number;
  namespaces: number;
  /** provider.up + the per-node client pods: a cluster that answers DNS from every node. */
  upMs: number;
  providerUpMs: number;
  clientsMs: number;
  /** downAll(run): processes, namespaces, files — what `vxchaos suite` does at the end. */
  downMs: number;
  /** The provider's own steps (ms), to see which one grows. */
  steps: Record<string, number>;
  clients: number;
  clientsResolving: number;
  /** MemAvailable before up − after up: everything, kernel included, but also whatever else the machine did. */
  memUsedMiB: number;
  /** RSS of the run's daemons after up. */
  rssMiB: number;
  /** MemAvailable after up: how close the run came to running out (watching `free`). */
  memAvailableAfterUpMiB: number;
  /** Namespaces of the run still listed after down (must be none). */
  leftovers: string[];
}

export interface LifecycleSize {
  nodes: number;
  reps: number;
  /** Median over reps. */
  upMs: number;
  downMs: number;
  memUsedMiB: number;
  rssMiB: number;
  /** Median ms per provider step (counts stripped from step names) plus the bench's client pods. */
  steps: Record<string, number>;
}

export interface LifecycleResult {
  runs: LifecycleRun[];
  sizes: LifecycleSize[];
  upFit: LinearFit;
  downFit: LinearFit;
  /** Up time per added node between consecutive sizes: superlinear growth shows as a rising cost. */
  upSegmentsMsPerNode: { from: number; to: number; msPerNode: number }[];
  skipped: { nodes: number; reason: string }[];
}

export interface LatencyPct {
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface StallSample {
  captureMs: number;
  probeMs: number;
  /** probe − capture. */
  errorMs: number;
  /** (probe − capture) / capture. */
  relError: number;
}

export interface AccuracyRun {
  libc: Libc;
  kind: 'baseline' | 'stall';
  target: string;
  lookups: number;
  /** Lookups compared (complete on the wire and OK in the probe). */
  compared: number;
  /** Packets tcpdump reports dropped by the kernel (a lost packet would distort ground truth). */
  captureDrops: number;
  pcap: string;
  probe: LatencyPct;
  capture: LatencyPct;
  /** probe p50 − capture p50 over the same lookups. */
  p50DiffUs: number;
  p99DiffUs: number;
  /** probe − capture per lookup. */
  perLookupErrorUs: { min: number; p50: number; p99: number; max: number };
  /** Spread of (capture start − probe start) over the run: small means lookups were paired right. */
  alignJitterUs: number;
  stalls: StallSample[];
  /** Queries the stall rule dropped (stall runs). */
  injectedDrops?: number;
}

export interface AccuracyResult {
  runs: AccuracyRun[];
  stallRule?: string;
}

export interface HeadroomProbe {
  libc: Libc;
  lookups: number;
  errors: number;
  wallS: number;
  lookupsPerS: number;
  /** DNS queries per second: two per lookup (A + AAAA). */
  qps: number;
  /** qps / dnsperf qps. */
  ratio: number;
}

export interface HeadroomRun {
  target: 'replica' | 'clusterIP';
  server: string;
  /** Queries in flight: dnsperf -q, probe threads × 2 (A + AAAA). */
  inFlight: number;
  durationS: number;
  /** The faster of the dnsperf runs (before and after the probes): the reference for the ratio. */
  dnsperf: DnsperfStats;
  dnsperfRuns: DnsperfStats[];
  probes: HeadroomProbe[];
}

export interface HeadroomResult {
  runs: HeadroomRun[];
}

export interface SuiteRun {
  suite: string;
  quick: boolean;
  runId: string;
  /** runSuite from call to return: cluster up, every cell, reports, cluster down. */
  wallS: number;
  cells: number;
  failed: number;
  verdicts: Record<string, number>;
  reportDir: string;
  /** Which repetition of this suite and mode (1-based); absent in benches written before repetitions. */
  rep?: number;
  /** Each cell's verdict, by its label (client (name) × fault(mode) × mitigation). */
  cellVerdicts?: Record<string, string>;
}

/** Whether repeated --quick runs of one suite gave every cell the same verdict. */
export interface SuiteAgreement {
  suite: string;
  runs: number;
  cells: number;
  /** Cells with one verdict in every run. */
  unanimous: number;
  /** The cells whose verdict changed, with the verdict of each run in order. */
  changed: { cell: string; verdicts: string[] }[];
}

export interface SuitesResult {
  runs: SuiteRun[];
  skipped: { what: string; reason: string }[];
  /** Per suite, over its repeated --quick runs. */
  agreement?: SuiteAgreement[];
  /** The first --quick run of every suite, back to back: what a PR waits for. */
  quickTotalS?: number;
}

export interface TargetCheck {
  id: string;
  what: string;
  goal: string;
  measured: string;
  /** null: not measured in this run (skipped or failed section). */
  pass: boolean | null;
  note?: string;
}

export interface DropsOverheadRun {
  /** clean: every connect accepted (nothing dropped); drops: no listener, every SYN dies as NO_SOCKET. */
  path: 'clean' | 'drops';
  tracer: boolean;
  rep: number;
  connects: number;
  connectsPerS: number;
  /** With the tracer: drops it counted in the two namespaces. */
  dropsCounted?: number;
  topDrop?: string;
  /** With the tracer: times its program ran (every kfree_skb on the machine, other runs' included). */
  programRuns?: number;
  /** Kernel BPF accounting: mean run time of the program per run. */
  nsPerRun?: number;
}

export interface DropsOverheadResult {
  threads: number;
  durationS: number;
  reps: number;
  runs: DropsOverheadRun[];
  /** Medians per path. */
  summary: { path: 'clean' | 'drops'; connectsPerSOff: number; connectsPerSOn: number; slowdown: number; dropsPerConnect: number; nsPerDrop?: number }[];
}

/** One kernel under test: a qemu guest booted and a 3-node cluster brought up inside it (issue 12). */
export interface KernelRun {
  /** The --kernel spec (debian:bookworm, a path). */
  spec: string;
  release?: string;
  /** Where the kernel came from (package and version, or the path). */
  source?: string;
  accel?: 'kvm' | 'tcg';
  clocksource?: string;
  /** qemu start → the guest agent's first answer (Guest.bootMs). */
  bootMs?: number;
  /** bootGuest from call to return: the initramfs, and a /dev/kvm that opens but runs nothing (tried first, then TCG). */
  bootWallMs?: number;
  /** NetnsProvider({host: guest}).up of clusters/three-node.yaml, musl and glibc clients. */
  upMs?: number;
  /** The provider's own steps (ms), as in the lifecycle section. */
  steps?: Record<string, number>;
  /** Client pods (musl, glibc) that resolved the DNS service's name once the cluster was up. */
  resolving?: { ok: number; of: number };
  /** The provider's down inside the guest. */
  downMs?: number;
  /** Guest power-off until qemu is gone. */
  stopMs?: number;
  /** Runs the guest still listed after down (must be none). */
  leftovers?: string[];
  /** The step that failed, when one did: the figures before it still count. */
  error?: string;
}

export interface KernelsResult {
  runs: KernelRun[];
}

export interface BenchResult {
  schemaVersion: number;
  runId: string;
  startedAt: string;
  durationS: number;
  quick: boolean;
  machine: Machine;
  lifecycle?: LifecycleResult;
  accuracy?: AccuracyResult;
  headroom?: HeadroomResult;
  suites?: SuitesResult;
  /** The drop tracer's overhead (issue 11). */
  drops?: DropsOverheadResult;
  /** VM boot and in-guest cluster bring-up per kernel (issue 12). */
  kernels?: KernelsResult;
  /** 1-minute load average when the bench started and ended. */
  loadAverage: { start: number; end: number };
  /** Run ids of other vxchaos runs seen while the bench ran: they compete for the same CPUs. */
  otherRuns: string[];
  errors: { section: string; message: string }[];
  targets: TargetCheck[];
  /** Sections this run measured, when not all (a bench run for one section). */
  sections?: string[];
}
