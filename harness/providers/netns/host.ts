import type { ExecOptions, ExecResult } from '../../exec/shell.ts';

/** A process the netns provider started on its host: identified by PID and kernel start time (PIDs are reused). */
export interface HostProcess {
  pid: number;
  start: string;
}

export interface HostSpawnOptions {
  /** Where the process's stdout and stderr go (a file on the host). */
  log: string;
}

/**
 * The one way the netns provider reaches the machine its namespaces live on: commands, files and daemons.
 * `LocalHost` is this machine; a guest agent in a microVM is another (issue: kernel matrix). The provider's
 * logic never touches node:fs, node:child_process or process.kill directly, so pointing it at a VM changes
 * nothing else.
 */
export interface Host {
  /** What this host is, for reports ("local", "qemu debian:bookworm 6.1.0-…"). */
  readonly describe: string;
  /**
   * The same host for teardown: its calls keep working after the run was aborted (Ctrl-C), where the
   * default host refuses to create anything new. Optional: without it teardown uses this host as it is.
   */
  forCleanup?(): Host;
  /** Run argv, bounded; throws RunError on non-zero exit unless opts.nothrow. */
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Several commands in one round trip where the host is remote; each result in order. Stops at the first failure unless nothrow. */
  runMany?(commands: readonly { argv: readonly string[]; opts?: ExecOptions }[]): Promise<ExecResult[]>;
  writeFile(path: string, content: string): Promise<void>;
  /**
   * Append and flush to disk (the ledger: a line must survive the crash that follows it). Optional: without
   * it the ledger appends with `sh -c 'cat >> FILE && sync FILE'` through run().
   */
  appendFile?(path: string, content: string): Promise<void>;
  readFile(path: string): Promise<string>;
  mkdir(path: string): Promise<void>;
  /** rm -rf; missing paths are fine. */
  remove(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Start a detached daemon (its own process group); resolves once it is running or has exited at once. */
  spawn(argv: readonly string[], opts: HostSpawnOptions): Promise<HostProcess & { exitedAtOnce?: number | null }>;
  /** The start time of pid, or undefined when no such process exists. */
  procStart(pid: number): Promise<string | undefined>;
  /** Signal a process; false when it is gone. */
  kill(pid: number, signal: NodeJS.Signals): Promise<boolean>;
}
