import { connect, type Socket } from 'node:net';
import { RunError, VxError } from '../errors.ts';
import { checkAborted, track } from '../exec/finalizers.ts';
import { DEFAULT_TIMEOUT_MS, type ExecOptions, type ExecResult } from '../exec/shell.ts';
import type { Host, HostProcess, HostSpawnOptions } from '../exec/host.ts';
import { decodeResponse, encodeRequest, LineDecoder, type AgentRequest, type AgentResults, type AgentRunOpts, type AgentRunResult } from './protocol.ts';

/** Time an answer may take beyond the command's own timeout (virtio-serial round trip, TCG). */
const ROUND_TRIP_MARGIN_MS = 15_000;
/** File and process operations are quick in the guest; a stuck one means the guest is gone. */
const OP_TIMEOUT_MS = 30_000;

export class AgentGoneError extends VxError {
  constructor(why: string) {
    super('E_AGENT_GONE', `guest agent unreachable: ${why}`);
  }
}

/** An error the guest reported for a file or process operation; `code` is the guest's errno name (ENOENT …). */
export class GuestError extends VxError {
  constructor(op: string, message: string, code?: string) {
    super(code ?? 'E_GUEST', `guest ${op}: ${message}`);
  }
}

/** One connection to the agent's virtio-serial port (qemu's unix socket), many requests in flight. */
export class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly lines = new LineDecoder();
  private closed?: string;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const line of this.lines.push(chunk)) {
        const r = decodeResponse(line);
        const p = r && this.pending.get(r.id);
        if (!r || !p) continue; // an answer to a request given up on (a boot-time ping)
        this.pending.delete(r.id);
        clearTimeout(p.timer);
        if (r.ok) p.resolve(r.result);
        else p.reject(Object.assign(new Error(r.error.message), { code: r.error.code }));
      }
    });
    const gone = (why: string) => {
      if (this.closed) return;
      this.closed = why;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new AgentGoneError(why));
        this.pending.delete(id);
      }
    };
    socket.on('error', (e) => gone(e.message));
    socket.on('close', () => gone('connection closed (the VM stopped?)'));
  }

  static connect(path: string): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new AgentClient(s)));
      s.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  request<O extends AgentRequest['op']>(req: Extract<AgentRequest, { op: O }>, timeoutMs: number): Promise<AgentResults[O]> {
    if (this.closed) return Promise.reject(new AgentGoneError(this.closed));
    const id = this.nextId++;
    return new Promise<AgentResults[O]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AgentGoneError(`no answer to ${req.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(encodeRequest(id, req));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

const toAgentOpts = (o: ExecOptions = {}): AgentRunOpts => ({ input: o.input, env: o.env, timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS, nothrow: o.nothrow });

function toResult(argv: readonly string[], r: AgentRunResult, opts: ExecOptions = {}): ExecResult {
  if (r.timedOut || (r.exitCode === null && r.signal)) {
    throw new RunError(argv, null, r.stdout, r.stderr, r.timedOut ? `timed out after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms in the guest` : `was killed (${r.signal}) in the guest`);
  }
  if (r.exitCode !== 0 && !opts.nothrow) throw new RunError(argv, r.exitCode, r.stdout, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
}

/**
 * The netns provider's host inside a qemu guest: every command, file and daemon goes through the guest
 * agent. Files are written through the agent too: the guest sees the host root over 9p with cache=loose,
 * which does not see later host-side edits. Like LocalHost, the default instance refuses to create
 * anything once the run is aborted; `forCleanup()` keeps working for teardown.
 */
export class GuestHost implements Host {
  constructor(
    readonly client: AgentClient,
    readonly describe: string,
    private readonly abortable = true,
  ) {}

  forCleanup(): Host {
    return this.abortable ? new GuestHost(this.client, this.describe, false) : this;
  }

  private guard(): void {
    if (this.abortable) checkAborted();
  }

  private async op<O extends AgentRequest['op']>(req: Extract<AgentRequest, { op: O }>, timeoutMs = OP_TIMEOUT_MS): Promise<AgentResults[O]> {
    try {
      return await track(this.client.request(req, timeoutMs));
    } catch (e) {
      if (e instanceof VxError) throw e;
      throw new GuestError(req.op, (e as Error).message, (e as { code?: string }).code);
    }
  }

  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.guard();
    const a = toAgentOpts(opts);
    const r = await this.op({ op: 'run', argv: [...argv], opts: a }, a.timeoutMs! + ROUND_TRIP_MARGIN_MS);
    return toResult(argv, r, opts);
  }

  /** One round trip for the whole list; throws at the first command that failed without nothrow. */
  async runMany(commands: readonly { argv: readonly string[]; opts?: ExecOptions }[]): Promise<ExecResult[]> {
    this.guard();
    if (commands.length === 0) return [];
    const cs = commands.map((c) => ({ argv: [...c.argv], opts: toAgentOpts(c.opts) }));
    const total = cs.reduce((s, c) => s + c.opts.timeoutMs!, 0) + ROUND_TRIP_MARGIN_MS;
    const { results } = await this.op({ op: 'runMany', commands: cs }, total);
    return results.map((r, i) => toResult(commands[i]!.argv, r, commands[i]!.opts));
  }

  async writeFile(path: string, content: string): Promise<void> {
    this.guard();
    await this.op({ op: 'writeFile', path, content });
  }

  async appendFile(path: string, content: string): Promise<void> {
    this.guard();
    await this.op({ op: 'appendFile', path, content });
  }

  async readFile(path: string): Promise<string> {
    return (await this.op({ op: 'readFile', path })).content;
  }

  async mkdir(path: string): Promise<void> {
    this.guard();
    await this.op({ op: 'mkdir', path });
  }

  async remove(path: string): Promise<void> {
    await this.op({ op: 'remove', path });
  }

  async exists(path: string): Promise<boolean> {
    return (await this.op({ op: 'exists', path })).exists;
  }

  async spawn(argv: readonly string[], opts: HostSpawnOptions): Promise<HostProcess & { exitedAtOnce?: number | null }> {
    this.guard();
    if (!argv[0]) throw new VxError('E_SPAWN', 'spawn: empty argv');
    try {
      return await this.op({ op: 'spawn', argv: [...argv], log: opts.log });
    } catch (e) {
      if (e instanceof AgentGoneError) throw e;
      throw new VxError('E_SPAWN', `cannot start ${argv.join(' ')} in the guest: ${(e as Error).message}`);
    }
  }

  async procStart(pid: number): Promise<string | undefined> {
    return (await this.op({ op: 'procStart', pid })).start ?? undefined;
  }

  async kill(pid: number, signal: NodeJS.Signals): Promise<boolean> {
    return (await this.op({ op: 'kill', pid, signal })).ok;
  }
}
