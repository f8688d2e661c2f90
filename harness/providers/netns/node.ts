import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VxError } from '../../errors.ts';
import { procStart, type Ledger } from '../../exec/ledger.ts';
import type { ExecOptions, ExecResult, Shell } from '../../exec/shell.ts';
import type { ClientPod, ClusterNode, Daemon, ExecTarget, Libc, Pod, PodRole, SpawnOptions } from '../provider.ts';

export interface NetnsContext {
  sh: Shell;
  ledger: Ledger;
}

/**
 * A node or pod of the netns provider is a network namespace. Commands run with `ip netns exec`, which
 * also bind-mounts /etc/netns/<ns>/* over /etc/* — that is how a pod gets its own resolv.conf.
 */
export class NetnsTarget implements ExecTarget {
  private etcMade = false;
  constructor(
    readonly name: string,
    readonly netns: string,
    protected readonly ctx: NetnsContext,
  ) {}

  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.ctx.sh(['ip', 'netns', 'exec', this.netns, ...argv], opts);
  }

  private hostPath(path: string): string {
    if (!path.startsWith('/etc/')) {
      throw new VxError('E_SEAM', `netns provider: ${this.name}: only files under /etc/ are private to a namespace (got ${path})`);
    }
    const etc = join('/etc/netns', this.netns);
    if (!this.etcMade) {
      this.ctx.ledger.record({ kind: 'path', path: etc });
      this.etcMade = true;
    }
    return join(etc, path.slice('/etc/'.length));
  }

  async writeFile(path: string, content: string): Promise<void> {
    const p = this.hostPath(path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
  }

  async readFile(path: string): Promise<string> {
    return readFileSync(this.hostPath(path), 'utf8');
  }

  /** A daemon in this namespace: detached (its own process group), recorded by PID and start time. */
  async spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon> {
    const logDir = join(this.ctx.ledger.dir, 'logs');
    mkdirSync(logDir, { recursive: true });
    const log = join(logDir, `${this.name}-${opts.name}.log`);
    const fd = openSync(log, 'a');
    const child = spawn('ip', ['netns', 'exec', this.netns, ...argv], { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const pid = child.pid;
    if (pid === undefined) throw new VxError('E_SPAWN', `cannot start ${argv.join(' ')} in ${this.name}`);
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    child.unref();
    const start = procStart(pid) ?? '';
    this.ctx.ledger.record({ kind: 'pid', pid, start, what: `${this.name}/${opts.name}` });
    await new Promise((r) => setTimeout(r, 30));
    if (exited !== undefined) {
      throw new VxError('E_SPAWN', `${opts.name} in ${this.name} exited at once (code ${exited}): ${argv.join(' ')}\n${readFileSync(log, 'utf8').slice(-2000)}`);
    }
    return {
      pid,
      stop: async () => {
        if (procStart(pid) !== start) return;
        process.kill(pid, 'SIGTERM');
        // unbound exits asynchronously after a signal: wait until the process is really gone.
        for (let i = 0; i < 100 && procStart(pid) === start; i++) await new Promise((r) => setTimeout(r, 20));
        if (procStart(pid) === start) process.kill(pid, 'SIGKILL');
      },
    };
  }
}

export class NetnsNode extends NetnsTarget implements ClusterNode {
  constructor(name: string, netns: string, ctx: NetnsContext, readonly ip: string, readonly podSubnet: string) {
    super(name, netns, ctx);
  }
}

export class NetnsPod extends NetnsTarget implements Pod {
  constructor(name: string, netns: string, ctx: NetnsContext, readonly node: string, readonly ip: string, readonly role: PodRole) {
    super(name, netns, ctx);
  }
}

export class NetnsClientPod extends NetnsPod implements ClientPod {
  constructor(name: string, netns: string, ctx: NetnsContext, node: string, ip: string, readonly libc: Libc, readonly probe: readonly string[]) {
    super(name, netns, ctx, node, ip, 'client');
  }
}
