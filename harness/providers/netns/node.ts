import { dirname, join } from 'node:path';
import { VxError } from '../../errors.ts';
import type { ExecOptions, ExecResult } from '../../exec/shell.ts';
import type { ClientPod, ClusterNode, Daemon, ExecTarget, Libc, Pod, PodRole, SpawnOptions } from '../provider.ts';
import type { Host } from './host.ts';
import type { Ledger } from './ledger.ts';

export interface NetnsContext {
  /** Every command, file and daemon of the provider goes through here. */
  host: Host;
  ledger: Ledger;
}

/**
 * A node or pod of the netns provider is a network namespace. Commands run with `ip netns exec`, which
 * also bind-mounts /etc/netns/<ns>/* over /etc/* — that is how a pod gets its own resolv.conf.
 */
export class NetnsTarget implements ExecTarget {
  private etcMade?: Promise<void>;
  constructor(
    readonly name: string,
    readonly netns: string,
    readonly ctx: NetnsContext,
  ) {}

  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.ctx.host.run(['ip', 'netns', 'exec', this.netns, ...argv], opts);
  }

  private async hostPath(path: string): Promise<string> {
    if (!path.startsWith('/etc/')) {
      throw new VxError('E_SEAM', `netns provider: ${this.name}: only files under /etc/ are private to a namespace (got ${path})`);
    }
    const etc = join('/etc/netns', this.netns);
    // Recorded once, before the first file under it exists.
    this.etcMade ??= this.ctx.ledger.record({ kind: 'path', path: etc });
    await this.etcMade;
    return join(etc, path.slice('/etc/'.length));
  }

  async writeFile(path: string, content: string): Promise<void> {
    const p = await this.hostPath(path);
    await this.ctx.host.mkdir(dirname(p));
    await this.ctx.host.writeFile(p, content);
  }

  async readFile(path: string): Promise<string> {
    return this.ctx.host.readFile(await this.hostPath(path));
  }

  /** A daemon in this namespace: detached (its own process group), recorded by PID and start time. */
  async spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon> {
    const { host, ledger } = this.ctx;
    const logDir = join(ledger.dir, 'logs');
    await host.mkdir(logDir);
    const log = join(logDir, `${this.name}-${opts.name}.log`);
    const p = await host.spawn(['ip', 'netns', 'exec', this.netns, ...argv], { log });
    const { pid, start } = p;
    await ledger.record({ kind: 'pid', pid, start, what: `${this.name}/${opts.name}` });
    if (p.exitedAtOnce !== undefined) {
      const out = await host.readFile(log).catch(() => '');
      throw new VxError('E_SPAWN', `${opts.name} in ${this.name} exited at once (code ${p.exitedAtOnce}): ${argv.join(' ')}\n${out.slice(-2000)}`);
    }
    const down = host.forCleanup?.() ?? host; // stopping must work during an aborted run's cleanup
    return {
      pid,
      stop: async () => {
        if ((await down.procStart(pid)) !== start) return;
        await down.kill(pid, 'SIGTERM');
        // unbound exits asynchronously after a signal: wait until the process is really gone.
        for (let i = 0; i < 100 && (await down.procStart(pid)) === start; i++) await new Promise((r) => setTimeout(r, 20));
        if ((await down.procStart(pid)) === start) await down.kill(pid, 'SIGKILL');
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
