import { StringDecoder } from 'node:string_decoder';
import { ps, $ as zx$ } from 'zx';
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
  /**
   * Called with stdout as it arrives (UTF-8 text; a chunk may end mid-line). ExecResult.stdout still holds
   * all of it. If the callback throws, the command is stopped and the call rejects with that error.
   */
  onStdout?: (chunk: string) => void;
  /**
   * Stops the command early: on abort it and every process it started get SIGTERM (SIGKILL
   * ABORT_KILL_AFTER_MS later if still running), and the call resolves, never throws, with what it printed
   * until it exited and exitCode null. An already aborted signal starts nothing and resolves with empty
   * output. Until an abort, timeoutMs and RunError work as without a signal.
   */
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/** The one way the harness runs a command: argv array in, bounded, output out. */
export type Shell = (argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

export const DEFAULT_TIMEOUT_MS = 30_000;
/** Grace between the SIGTERM of an abort and a SIGKILL: long enough for a clean exit, short enough for a stop. */
export const ABORT_KILL_AFTER_MS = 5_000;

const $ = zx$({ quiet: true, verbose: false });

const run = (abortable: boolean): Shell => async (argv, opts = {}) => {
  if (abortable) checkAborted();
  if (opts.signal?.aborted) return { stdout: '', stderr: '', exitCode: null };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const p = $({
    nothrow: true,
    timeout: timeoutMs,
    timeoutSignal: 'SIGKILL',
    input: opts.input ?? '',
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  })`${[...argv]}`;
  // zx's `signal` option reaches only the direct child (child_process.spawn's abort) and would orphan what a
  // shell started; zx's kill() signals children before their parent, which may then run its next command.
  // So: list the tree with zx's ps, then signal the parent first.
  const stop = (sig: NodeJS.Signals) => {
    const pid = p.pid;
    if (p.stage !== 'running' || pid === undefined) return;
    void ps
      .tree({ pid, recursive: true })
      .catch(() => [])
      .then((tree) => {
        for (const q of [pid, ...tree.map((t) => Number(t.pid))]) {
          try {
            process.kill(q, sig);
          } catch {} // already gone
        }
      });
  };
  const killNow = () => stop('SIGKILL');
  let callbackError: unknown;
  const stopWith = (e: unknown) => {
    callbackError ??= e;
    killNow();
  };
  if (opts.onStdout) {
    const onStdout = opts.onStdout;
    // A multi-byte character can straddle two chunks: decode across them.
    const decoder = new StringDecoder('utf8');
    p.stdout?.on('data', (b: Buffer) => {
      if (callbackError !== undefined) return;
      try {
        const text = decoder.write(b);
        if (text) onStdout(text);
      } catch (e) {
        stopWith(e);
      }
    });
  }
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    stop('SIGTERM');
    // A command that ignores SIGTERM must not hold the caller until its timeout.
    killTimer = setTimeout(killNow, ABORT_KILL_AFTER_MS);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const out = await track(Promise.resolve(p)).finally(() => {
    clearTimeout(killTimer);
    opts.signal?.removeEventListener('abort', onAbort);
  });
  if (callbackError !== undefined) throw callbackError;
  if (opts.signal?.aborted) return { stdout: out.stdout, stderr: out.stderr, exitCode: null };
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
  const fn = (async (argv: readonly string[], opts?: ExecOptions) => {
    calls.push([...argv]);
    const stdout = reply(argv);
    if (stdout) opts?.onStdout?.(stdout);
    return { stdout, stderr: '', exitCode: 0 };
  }) as Shell & { calls: string[][] };
  fn.calls = calls;
  return fn;
}
