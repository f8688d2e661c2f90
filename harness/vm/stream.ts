import { $ as zx$ } from 'zx';
import { RunError } from '../errors.ts';
import type { ExecResult } from '../exec/shell.ts';
import { track } from '../exec/finalizers.ts';

const $ = zx$({ quiet: true, verbose: false });

/** Like the shell seam, plus a working directory and each stdout/stderr line as it comes (download progress). */
export async function runStreaming(
  argv: readonly string[],
  opts: { timeoutMs: number; cwd?: string; onLine?: (line: string) => void; nothrow?: boolean },
): Promise<ExecResult> {
  const p = $({ nothrow: true, timeout: opts.timeoutMs, timeoutSignal: 'SIGKILL', cwd: opts.cwd, input: '' })`${[...argv]}`;
  if (opts.onLine) {
    const onLine = opts.onLine;
    for (const stream of [p.stdout, p.stderr]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) onLine(l.trim());
      });
    }
  }
  const out = await track(Promise.resolve(p));
  if (out.exitCode === null && out.signal) throw new RunError(argv, null, out.stdout, out.stderr, `timed out after ${opts.timeoutMs} ms or was killed (${out.signal})`);
  if (out.exitCode !== 0 && !opts.nothrow) throw new RunError(argv, out.exitCode, out.stdout, out.stderr);
  return { stdout: out.stdout, stderr: out.stderr, exitCode: out.exitCode };
}
