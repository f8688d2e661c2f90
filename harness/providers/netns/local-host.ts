import { spawn } from 'node:child_process';
import { access, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { checkAborted } from '../../exec/finalizers.ts';
import { cleanupShell, shell, type ExecOptions, type ExecResult } from '../../exec/shell.ts';
import { VxError } from '../../errors.ts';
import { procStart } from '../../exec/proc.ts';
export { procStart };
import type { Host, HostProcess, HostSpawnOptions } from './host.ts';

/** How long a daemon must stay up after spawn before it counts as started (a bad argv exits within this). */
const SPAWN_SETTLE_MS = 30;

/**
 * This machine as the netns provider's host. The default instance is abortable: once the run is aborted
 * (Ctrl-C, SIGTERM) it starts no command, writes no file and spawns nothing, so creation cannot race the
 * cleanup; `forCleanup()` is the same machine for teardown, which keeps working after an abort.
 */
export class LocalHost implements Host {
  readonly describe = 'local';

  constructor(private readonly abortable = true) {}

  forCleanup(): Host {
    return this.abortable ? new LocalHost(false) : this;
  }

  private guard(): void {
    if (this.abortable) checkAborted();
  }

  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return (this.abortable ? shell : cleanupShell)(argv, opts);
  }

  async runMany(commands: readonly { argv: readonly string[]; opts?: ExecOptions }[]): Promise<ExecResult[]> {
    const out: ExecResult[] = [];
    // A failing command throws (stopping here) unless its opts say nothrow.
    for (const c of commands) out.push(await this.run(c.argv, c.opts));
    return out;
  }

  async writeFile(path: string, content: string): Promise<void> {
    this.guard();
    await writeFile(path, content);
  }

  /** Appends and fsyncs: a ledger line must survive the crash that follows it. */
  async appendFile(path: string, content: string): Promise<void> {
    this.guard();
    const fh = await open(path, 'a');
    try {
      await fh.appendFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  readFile(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }

  async mkdir(path: string): Promise<void> {
    this.guard();
    await mkdir(path, { recursive: true });
  }

  async remove(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
  }

  async exists(path: string): Promise<boolean> {
    return access(path).then(
      () => true,
      () => false,
    );
  }

  async spawn(argv: readonly string[], opts: HostSpawnOptions): Promise<HostProcess & { exitedAtOnce?: number | null }> {
    this.guard();
    const [cmd, ...args] = argv;
    if (!cmd) throw new VxError('E_SPAWN', 'spawn: empty argv');
    const log = await open(opts.log, 'a');
    let child;
    try {
      // Detached: its own process group, so a Ctrl-C to the harness does not reach it before the ledger does.
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
      await new Promise<void>((resolve, reject) => {
        child!.once('spawn', resolve);
        child!.once('error', reject);
      });
    } catch (e) {
      throw new VxError('E_SPAWN', `cannot start ${argv.join(' ')}: ${(e as Error).message}`);
    } finally {
      await log.close();
    }
    const pid = child.pid!;
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    child.unref();
    const start = procStart(pid) ?? '';
    await new Promise((r) => setTimeout(r, SPAWN_SETTLE_MS));
    return exited === undefined ? { pid, start } : { pid, start, exitedAtOnce: exited };
  }

  async procStart(pid: number): Promise<string | undefined> {
    return procStart(pid);
  }

  async kill(pid: number, signal: NodeJS.Signals): Promise<boolean> {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}
