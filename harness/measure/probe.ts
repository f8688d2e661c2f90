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

/** Parses vxprobe's line protocol (images/probe/vxprobe.c). Refuses truncated output. */
export function parseProbeOutput(text: string): ProbeOutput {
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('# vxprobe '));
  const done = lines.find((l) => l.startsWith('# done '));
  if (!header || !done) throw new VxError('E_PROBE_OUTPUT', `probe output is incomplete (header ${!!header}, trailer ${!!done})`);
  const kv = (line: string) => Object.fromEntries(line.split(' ').filter((w) => w.includes('=')).map((w) => w.split('=') as [string, string]));
  const h = kv(header);
  const d = kv(done);
  const samples: Sample[] = [];
  for (const l of lines) {
    if (!l.startsWith('L ')) continue;
    const f = l.split(' ');
    samples.push({ thread: Number(f[1]), startUs: Number(f[2]), latencyUs: Number(f[3]), result: f[4] ?? 'UNKNOWN' });
  }
  if (samples.length !== Number(d.samples)) throw new VxError('E_PROBE_OUTPUT', `probe printed ${samples.length} samples but counted ${d.samples}`);
  return { libc: h.libc ?? '?', mode: h.mode ?? '?', samples, wallUs: Number(d.wall_us) };
}

/** Worst case a lookup can take: glibc's timeout × attempts × search-list rounds, with margin. */
const IN_FLIGHT_GRACE_S = 120;

export async function runProbe(pod: ProbeTarget, args: ProbeArgs): Promise<ProbeOutput> {
  const bound = ((args.durationS ?? 60) + IN_FLIGHT_GRACE_S) * 1000;
  const r = await pod.exec([...pod.probe, ...probeArgv(args)], { timeoutMs: bound });
  return parseProbeOutput(r.stdout);
}
