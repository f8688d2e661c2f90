import { VxError } from '../errors.ts';
import type { ProbeTarget } from '../providers/provider.ts';

export interface Sample {
  thread: number;
  startUs: number;
  latencyUs: number;
  /** OK or a symbolic error: EAI_AGAIN, EAI_NONAME, ETIMEDOUT, ... */
  result: string;
}

export interface ProbeOutput {
  libc: string;
  mode: string;
  samples: Sample[];
  wallUs: number;
  /** Set when the probe was stopped before its own end: by the caller's signal or at runProbe's time bound. */
  stopped?: 'aborted' | 'bound';
}

export interface ProbeArgs {
  targets: readonly string[];
  threads: number;
  durationS?: number;
  count?: number;
  fresh?: boolean;
  /** connect mode: TCP port to connect to (targets are IPv4 addresses). */
  connectPort?: number;
}

export function probeArgv(args: ProbeArgs): string[] {
  const argv = ['-t', String(args.threads)];
  if (args.durationS !== undefined) argv.push('-d', String(args.durationS));
  if (args.count !== undefined) argv.push('-c', String(args.count));
  if (args.fresh) argv.push('-f');
  if (args.connectPort !== undefined) argv.push('-C', '-p', String(args.connectPort));
  return [...argv, ...args.targets];
}

const SAMPLE_LINE = /^L (\d+) (\d+) (\d+) (\S+) (-?\d+)$/;

const keyValues = (line: string): Record<string, string> =>
  Object.fromEntries(line.split(' ').filter((w) => w.includes('=')).map((w) => w.split('=') as [string, string]));

/**
 * Reads vxprobe's line protocol (images/probe/vxprobe.c) as it arrives: chunks may split lines anywhere;
 * only complete lines are parsed, the rest waits for the next chunk.
 */
export class ProbeLineParser {
  libc = '?';
  mode = '?';
  readonly samples: Sample[] = [];
  private header = false;
  private trailer?: { kind: 'done' | 'stopped'; samples: number; wallUs: number };
  private pending = '';

  constructor(private readonly onSample?: (s: Sample) => void) {}

  push(chunk: string): void {
    const lines = (this.pending + chunk).split('\n');
    this.pending = lines.pop() ?? '';
    for (const l of lines) this.line(l);
  }

  /** The output is complete: a last line without its newline counts (output that was trimmed). */
  end(): void {
    const rest = this.pending;
    this.pending = '';
    if (rest) this.line(rest);
  }

  private line(l: string): void {
    if (l.startsWith('L ')) {
      const m = SAMPLE_LINE.exec(l);
      if (!m) throw new VxError('E_PROBE_OUTPUT', `probe printed a malformed sample line: ${JSON.stringify(l)}`);
      const s: Sample = { thread: Number(m[1]), startUs: Number(m[2]), latencyUs: Number(m[3]), result: m[4]! };
      this.samples.push(s);
      this.onSample?.(s);
    } else if (l.startsWith('# vxprobe ')) {
      const h = keyValues(l);
      this.header = true;
      this.libc = h.libc ?? '?';
      this.mode = h.mode ?? '?';
    } else if (!this.trailer && (l.startsWith('# done ') || l.startsWith('# stopped '))) {
      const d = keyValues(l);
      this.trailer = { kind: l.startsWith('# done ') ? 'done' : 'stopped', samples: Number(d.samples), wallUs: Number(d.wall_us) };
      if (this.trailer.samples !== this.samples.length) {
        throw new VxError('E_PROBE_OUTPUT', `probe printed ${this.samples.length} samples but counted ${d.samples}`);
      }
    }
  }

  /** True once the probe said it ran to its own end (`# done`). */
  get done(): boolean {
    return this.trailer?.kind === 'done';
  }

  /** The whole run; refuses truncated output (no header or no `# done` trailer). */
  output(): ProbeOutput {
    if (!this.header || !this.done) {
      throw new VxError('E_PROBE_OUTPUT', `probe output is incomplete (header ${this.header}, trailer ${this.done})`);
    }
    return { libc: this.libc, mode: this.mode, samples: this.samples, wallUs: this.trailer!.wallUs };
  }

  /** What a stopped probe measured: its `# stopped` trailer's wall time when it printed one, else elapsedUs. */
  stoppedOutput(why: 'aborted' | 'bound', elapsedUs: number): ProbeOutput {
    if (this.done) return this.output();
    return { libc: this.libc, mode: this.mode, samples: this.samples, wallUs: this.trailer?.wallUs ?? elapsedUs, stopped: why };
  }
}

/** Parses a probe's complete output. Refuses truncated output. */
export function parseProbeOutput(text: string): ProbeOutput {
  const p = new ProbeLineParser();
  p.push(text);
  p.end();
  return p.output();
}

/** Worst case a lookup can take: glibc's timeout × attempts × search-list rounds, with margin. */
const IN_FLIGHT_GRACE_S = 120;
/** After the bound's SIGTERM: room for the shell's SIGKILL escalation before the hard timeout. */
const BOUND_KILL_GRACE_MS = 15_000;

export interface RunProbeOptions {
  /** Called with each sample as soon as its line arrives, in print order; if it throws, the probe is stopped and runProbe rejects. */
  onSample?: (s: Sample) => void;
  /** Stops the probe (SIGTERM); runProbe then resolves with the samples measured so far (stopped: 'aborted'). */
  signal?: AbortSignal;
  /** Hard bound on the run, after which the probe is stopped (stopped: 'bound'); default duration + IN_FLIGHT_GRACE_S. */
  boundMs?: number;
}

/**
 * Runs vxprobe on target and streams its samples. A probe stopped by opts.signal, or at its time bound
 * (opts.boundMs), resolves with what it measured, marked `stopped`; a probe that fails
 * (bad arguments: exit 2, a system call: exit 3) throws RunError with its message.
 */
export async function runProbe(target: ProbeTarget, args: ProbeArgs, opts: RunProbeOptions = {}): Promise<ProbeOutput> {
  const boundMs = opts.boundMs ?? ((args.durationS ?? 60) + IN_FLIGHT_GRACE_S) * 1000;
  const bound = new AbortController();
  const timer = setTimeout(() => bound.abort(), boundMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, bound.signal]) : bound.signal;
  const parser = new ProbeLineParser(opts.onSample);
  let streamed = false;
  const started = performance.now();
  try {
    const r = await target.exec([...target.probe, ...probeArgv(args)], {
      timeoutMs: boundMs + BOUND_KILL_GRACE_MS,
      signal,
      onStdout: (chunk) => {
        streamed = true;
        parser.push(chunk);
      },
    });
    // A target whose exec cannot stream (it ignores onStdout) still returns the whole output at the end.
    if (!streamed) parser.push(r.stdout);
  } finally {
    clearTimeout(timer);
  }
  if (signal.aborted) return parser.stoppedOutput(opts.signal?.aborted ? 'aborted' : 'bound', Math.round((performance.now() - started) * 1000));
  parser.end();
  return parser.output();
}
