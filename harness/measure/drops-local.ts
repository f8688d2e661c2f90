import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { shell } from '../exec/shell.ts';
import type { DropHost } from './drops.ts';

/** Kernel start time of a process (field 22 of /proc/PID/stat): PIDs are reused, start times are not. */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * This machine as a DropHost, for the tracer's own tests and the bench; the netns provider passes its Host
 * (harness/providers/netns/host.ts) instead, which records the daemon in the run's ledger.
 */
export const localDropHost: DropHost & { run: typeof shell } = {
  run: shell,
  async spawn(argv, opts) {
    const fd = openSync(opts.log, 'a');
    try {
      const [cmd = '', ...args] = argv;
      const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd] });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.unref();
      const pid = child.pid as number;
      const start = procStart(pid) ?? '';
      const early = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
      return early === undefined ? { pid, start } : { pid, start, exitedAtOnce: early };
    } finally {
      closeSync(fd);
    }
  },
  async kill(pid, signal) {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  },
  async readFile(path) {
    return readFileSync(path, 'utf8');
  },
  async writeFile(path, content) {
    writeFileSync(path, content);
  },
  async mkdir(path) {
    if (!existsSync(path)) mkdirSync(path, { recursive: true });
  },
  async procStart(pid) {
    return procStart(pid);
  },
};
