import { $ as zx$ } from 'zx';
import { RunError } from '../errors.ts';
import { checkAborted, track } from './finalizers.ts';

export interface ExecOptions {
  /** Every external call is bounded; default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Return non-zero exits as data instead of throwing (only where the exit code is data). */
  nothrow?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/** The one way the harness runs a command: argv array in, bounded, output out. */
export type Shell = (argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

export const DEFAULT_TIMEOUT_MS = 30_000;

const $ = zx$({ quiet: true, verbose: false });

const run = (abortable: boolean): Shell => async (argv, opts = {}) => {
  if (abortable) checkAborted();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const p = $({
    nothrow: true,
    timeout: timeoutMs,
    timeoutSignal: 'SIGKILL',
    input: opts.input ?? '',
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  })`${[...argv]}`;
  const out = await track(Promise.resolve(p));
  const result: ExecResult = { stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode };
  if (out.exitCode === null && out.signal) {
    // zx reports a timeout as a kill; say which it was.
    throw new RunError(argv, null, out.stdout, out.stderr, `timed out after ${timeoutMs} ms or was killed (${out.signal})`);
  }
  if (out.exitCode !== 0 && !opts.nothrow) throw new RunError(argv, out.exitCode, out.stdout, out.stderr);
  return result;
};

/** Refuses to start anything once the run is aborted (Ctrl-C, SIGTERM): creation cannot race cleanup. */
export const shell: Shell = run(true);
/** For removing things: keeps working after an abort. */
export const cleanupShell: Shell = run(false);

/** A shell that records argv instead of running it: for dry-run plans and unit tests of command plans. */
export function recordingShell(reply: (argv: readonly string[]) => string = () => ''): Shell & { calls: string[][] } {
  const calls: string[][] = [];
  const fn = (async (argv: readonly string[]) => {
    calls.push([...argv]);
    return { stdout: reply(argv), stderr: '', exitCode: 0 };
  }) as Shell & { calls: string[][] };
  fn.calls = calls;
  return fn;
}
