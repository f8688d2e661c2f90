import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunError } from '../errors.ts';
import { ABORT_KILL_AFTER_MS, recordingShell, shell } from './shell.ts';

/** Whether pid is still a running process (not gone, not a zombie waiting for init) after up to 2 s. */
async function runningAfterAWhile(pid: number): Promise<boolean> {
  const state = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return 'gone';
    }
  };
  for (let i = 0; i < 100 && state() !== 'gone' && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
  return state() !== 'gone' && state() !== 'Z';
}

// Real processes (sh, sleep), no root: the streaming and abort contract of the one shell seam.
describe('shell: streaming and abort', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxc-shell-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hands stdout over as it arrives and, aborted, stops the whole tree and resolves with the output', async () => {
    const ac = new AbortController();
    const chunks: string[] = [];
    // The shell prints its child's pid, then waits on it: an abort must not orphan the child.
    const r = await shell(['sh', '-c', 'sleep 30 & echo "$!"; wait'], {
      signal: ac.signal,
      onStdout: (c) => {
        chunks.push(c);
        if (chunks.join('').includes('\n')) ac.abort();
      },
    });
    const sleeper = Number(r.stdout.split('\n')[0]);
    expect(sleeper).toBeGreaterThan(1);
    expect(r.exitCode).toBeNull();
    expect(chunks.join('')).toBe(r.stdout);
    expect(await runningAfterAWhile(sleeper)).toBe(false);
  });

  it('starts nothing when the signal is already aborted', async () => {
    const marker = join(dir, 'started');
    const r = await shell(['touch', marker], { signal: AbortSignal.abort() });
    expect(r).toEqual({ stdout: '', stderr: '', exitCode: null });
    expect(existsSync(marker)).toBe(false);
  });

  it('keeps the old contract without an abort: full output, exit code, RunError on failure and on timeout', async () => {
    const chunks: string[] = [];
    const r = await shell(['sh', '-c', 'printf "a\\nb\\n"'], { signal: new AbortController().signal, onStdout: (c) => chunks.push(c) });
    expect(r).toEqual({ stdout: 'a\nb\n', stderr: '', exitCode: 0 });
    expect(chunks.join('')).toBe('a\nb\n');
    await expect(shell(['sh', '-c', 'echo bad >&2; exit 3'], { signal: new AbortController().signal })).rejects.toThrow(RunError);
    await expect(shell(['sleep', '20'], { timeoutMs: 200, signal: new AbortController().signal })).rejects.toThrow(/timed out after 200 ms/);
  });

  it('stops the command and rejects with the error when onStdout throws', async () => {
    const marker = join(dir, 'after-throw');
    const p = shell(['sh', '-c', 'echo one; sleep 20; touch "$1"', 'sh', marker], {
      onStdout: () => {
        throw new Error('parser refused the line');
      },
    });
    await expect(p).rejects.toThrow('parser refused the line');
    expect(existsSync(marker)).toBe(false);
  });

  it(`kills a command that ignores SIGTERM ${ABORT_KILL_AFTER_MS} ms after the abort`, async () => {
    const ac = new AbortController();
    const r = await shell(['sh', '-c', 'trap "" TERM; echo ready; sleep 60; echo late'], {
      timeoutMs: 60_000,
      signal: ac.signal,
      onStdout: (c) => c.includes('ready') && ac.abort(),
    });
    expect(r).toEqual({ stdout: 'ready\n', stderr: '', exitCode: null });
  });

  it('recordingShell hands its reply to onStdout as a real command would', async () => {
    const sh = recordingShell(() => 'x\n');
    const chunks: string[] = [];
    await sh(['vxprobe'], { onStdout: (c) => chunks.push(c) });
    expect(chunks).toEqual(['x\n']);
  });
});
