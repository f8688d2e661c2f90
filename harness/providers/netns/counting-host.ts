import type { ExecOptions, ExecResult } from '../../exec/shell.ts';
import type { Host, HostProcess, HostSpawnOptions } from './host.ts';

export interface HostCall {
  member: keyof Host;
  /** argv for run/spawn, the path for file calls, the pid for procStart/kill. */
  what: string[];
  /** What a run got on stdin (the lines of an `ip -batch -`). */
  input?: string;
}

/**
 * A Host that passes every call to another and writes it down: tests use it to show that the provider
 * reaches the machine only through the seam. Its cleanup variant writes into the same list.
 */
export class CountingHost implements Host {
  readonly describe: string;

  constructor(
    private readonly inner: Host,
    readonly calls: HostCall[] = [],
  ) {
    this.describe = inner.describe;
    // Mirror the inner host's optional members: without its appendFile the ledger must take its fallback.
    if (!inner.appendFile) Object.defineProperty(this, 'appendFile', { value: undefined });
  }

  private note(member: keyof Host, what: (string | number)[], input?: string): void {
    this.calls.push({ member, what: what.map(String), ...(input !== undefined ? { input } : {}) });
  }

  /** How many calls each member got. */
  counts(): Partial<Record<keyof Host, number>> {
    const out: Partial<Record<keyof Host, number>> = {};
    for (const c of this.calls) out[c.member] = (out[c.member] ?? 0) + 1;
    return out;
  }

  forCleanup(): Host {
    const c = this.inner.forCleanup?.();
    return c && c !== this.inner ? new CountingHost(c, this.calls) : this;
  }

  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    this.note('run', [...argv], opts?.input);
    return this.inner.run(argv, opts);
  }

  writeFile(path: string, content: string): Promise<void> {
    this.note('writeFile', [path]);
    return this.inner.writeFile(path, content);
  }

  async appendFile(path: string, content: string): Promise<void> {
    this.note('appendFile', [path]);
    return this.inner.appendFile!(path, content);
  }

  readFile(path: string): Promise<string> {
    this.note('readFile', [path]);
    return this.inner.readFile(path);
  }

  mkdir(path: string): Promise<void> {
    this.note('mkdir', [path]);
    return this.inner.mkdir(path);
  }

  remove(path: string): Promise<void> {
    this.note('remove', [path]);
    return this.inner.remove(path);
  }

  exists(path: string): Promise<boolean> {
    this.note('exists', [path]);
    return this.inner.exists(path);
  }

  spawn(argv: readonly string[], opts: HostSpawnOptions): Promise<HostProcess & { exitedAtOnce?: number | null }> {
    this.note('spawn', [...argv]);
    return this.inner.spawn(argv, opts);
  }

  procStart(pid: number): Promise<string | undefined> {
    this.note('procStart', [pid]);
    return this.inner.procStart(pid);
  }

  kill(pid: number, signal: NodeJS.Signals): Promise<boolean> {
    this.note('kill', [pid, signal]);
    return this.inner.kill(pid, signal);
  }
}
