import { PassThrough, Readable } from 'node:stream';
import type { Exec, V1Status } from '@kubernetes/client-node';
import { RunError } from '../../errors.ts';
import { DEFAULT_TIMEOUT_MS, type ExecOptions, type ExecResult } from '../../exec/shell.ts';
import type { ClientPod, ClusterNode, Daemon, Libc, Pod, PodRole, SpawnOptions } from '../provider.ts';
import { waitFor, type KindContext, type PodExec, type PodRef } from './context.ts';

/** Shell that starts argv in the background, logs to a file named after the daemon and prints its pid. */
const SPAWN_SCRIPT = '"$@" >"/tmp/vxchaos-$0.log" 2>&1 </dev/null & echo $!';

function parsePid(what: string, out: ExecResult): number {
  const pid = Number(out.stdout.trim().split('\n').pop());
  if (!Number.isInteger(pid) || pid <= 0) throw new RunError([what], out.exitCode, out.stdout, out.stderr, 'did not print a pid');
  return pid;
}

type ExecFn = (argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

/** File writes and reads through exec: the same for a node container and a pod. */
async function writeVia(exec: ExecFn, path: string, content: string): Promise<void> {
  await exec(['sh', '-c', 'cat > "$1"', 'sh', path], { input: content });
}

async function readVia(exec: ExecFn, path: string): Promise<string> {
  return (await exec(['cat', path])).stdout;
}

/** A background daemon through exec, stopped by pid: a daemon exits asynchronously after the signal. */
async function spawnVia(exec: ExecFn, where: string, argv: readonly string[], opts: SpawnOptions): Promise<Daemon> {
  const pid = parsePid(`spawn ${opts.name} ${where}`, await exec(['sh', '-c', SPAWN_SCRIPT, opts.name, ...argv]));
  return {
    pid,
    stop: async () => {
      await exec(['kill', '-TERM', String(pid)], { nothrow: true });
      await waitFor(`pid ${pid} (${opts.name}) to exit ${where}`, async () => {
        const alive = await exec(['kill', '-0', String(pid)], { nothrow: true });
        if (alive.exitCode === 0) throw new Error('still running');
      }, { timeoutMs: 15_000, minIntervalMs: 100 });
    },
  };
}

/** Where a node's private files live: the node container's own /tmp, gone with the cluster. */
export const NODE_PRIVATE_DIR = '/tmp/vxchaos-files';

/**
 * argv in a private mount namespace (unshare's default propagation is private) with each private file
 * bind-mounted over the path it stands for: the process sees the file, the node's own file is never touched.
 */
export function privateMountArgv(binds: readonly (readonly [source: string, target: string])[], argv: readonly string[]): string[] {
  const script = 'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 125; shift 2; done; shift; exec "$@"';
  return ['unshare', '--mount', 'sh', '-c', script, 'sh', ...binds.flat(), '--', ...argv];
}

let viewCount = 0;

/**
 * A kind node: a container on the runner's Docker. Its network namespace is the node's, so argv sees
 * flannel.1, kube-proxy's chains and conntrack exactly as kubelet's host does. Files written through it
 * are private to this object (see privateMountArgv): a real node's /etc/resolv.conf is never overwritten.
 */
export class KindNode implements ClusterNode {
  /** Path as the node's processes see it → the private copy on the node. */
  private readonly files = new Map<string, string>();
  private readonly id = ++viewCount;

  constructor(
    private readonly ctx: KindContext,
    /** Topology name (node-1 …), what faults and suites speak. */
    readonly name: string,
    /** Container (= Kubernetes node) name, what docker and kubectl speak. */
    readonly container: string,
    readonly ip: string,
    readonly podSubnet: string,
  ) {}

  /** The same node with no private files of its own: what one cell writes is seen by nobody else. */
  view(): KindNode {
    return new KindNode(this.ctx, this.name, this.container, this.ip, this.podSubnet);
  }

  /** docker exec as it is, without the private mounts (node-wide reads and kubelet-visible changes). */
  private dockerExec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    // -i only when there is stdin: without it docker exec must not wait on ours.
    const stdin = opts.input !== undefined ? ['-i'] : [];
    // The environment belongs inside the node, not to the docker client.
    const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const { env: _clientEnv, ...rest } = opts;
    return this.ctx.shell(['docker', 'exec', ...stdin, ...env, this.container, ...argv], rest);
  }

  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.dockerExec(this.files.size ? privateMountArgv([...this.files].map(([target, source]) => [source, target] as const), argv) : argv, opts);
  }

  async writeFile(path: string, content: string): Promise<void> {
    const priv = this.files.get(path) ?? `${NODE_PRIVATE_DIR}/${this.id}${path.replaceAll('/', '_')}`;
    await this.dockerExec(['mkdir', '-p', NODE_PRIVATE_DIR]);
    await writeVia((a, o) => this.dockerExec(a, o), priv, content);
    this.files.set(path, priv);
  }

  readFile(path: string): Promise<string> {
    return readVia((a, o) => this.dockerExec(a, o), this.files.get(path) ?? path);
  }

  spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon> {
    return spawnVia((a, o) => this.exec(a, o), `on ${this.name}`, argv, opts);
  }
}

/** A pod reached through the Kubernetes exec API, as `kubectl exec` reaches it. */
export class KindPod implements Pod {
  constructor(
    protected readonly podExec: PodExec,
    readonly ref: PodRef,
    /** Topology node name. */
    readonly node: string,
    readonly ip: string,
    readonly role: PodRole,
  ) {}

  get name(): string {
    return this.ref.name;
  }

  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.podExec(this.ref, argv, opts);
  }

  writeFile(path: string, content: string): Promise<void> {
    return writeVia((a, o) => this.exec(a, o), path, content);
  }

  readFile(path: string): Promise<string> {
    return readVia((a, o) => this.exec(a, o), path);
  }

  spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon> {
    return spawnVia((a, o) => this.exec(a, o), `in ${this.name}`, argv, opts);
  }
}

export class KindClientPod extends KindPod implements ClientPod {
  readonly probe: readonly string[] = ['/usr/local/bin/vxprobe'];
  constructor(podExec: PodExec, ref: PodRef, node: string, ip: string, readonly libc: Libc) {
    super(podExec, ref, node, ip, 'client');
  }
}

/** The argv a person would type to repeat a pod exec by hand (for errors and plans). */
export function kubectlExecArgv(kubeconfig: string, context: string, pod: PodRef, argv: readonly string[], stdin: boolean): string[] {
  return ['kubectl', '--kubeconfig', kubeconfig, '--context', context, 'exec', ...(stdin ? ['-i'] : []), '-n', pod.namespace, pod.name, '-c', pod.container, '--', ...argv];
}

/** Exit code from the exec API's final status: Success = 0; NonZeroExitCode carries it in causes. */
export function exitCodeOf(status: V1Status | undefined): number | null {
  if (!status) return null;
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : null;
}

/**
 * Pod exec through @kubernetes/client-node's Exec (websocket, v5.channel.k8s.io: stdin can be closed
 * without closing the session, so writeFile works). Bounded like every shell call.
 */
export function clientNodePodExec(kubeconfig: string, context: string): PodExec {
  // Loaded on first use: the client library takes ~2 s to import, which every CLI command would pay.
  let api: Promise<Exec> | undefined;
  const connect = async () => {
    const { Exec, KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    kc.setCurrentContext(context);
    return new Exec(kc);
  };
  return async (pod, argv, opts = {}) => {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const shown = kubectlExecArgv(kubeconfig, context, pod, argv, opts.input !== undefined);
    if (opts.env && Object.keys(opts.env).length) {
      // The exec API has no environment; pass it the way env(1) does.
      argv = ['env', ...Object.entries(opts.env).map(([k, v]) => `${k}=${v}`), ...argv];
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const stdout = new PassThrough().on('data', (b: Buffer) => out.push(b));
    const stderr = new PassThrough().on('data', (b: Buffer) => err.push(b));
    const stdin = opts.input !== undefined ? Readable.from(Buffer.from(opts.input)) : null;
    let status: V1Status | undefined;
    api ??= connect();
    const ws = await (await api).exec(pod.namespace, pod.name, pod.container, [...argv], stdout, stderr, stdin, false, (s) => {
      status = s;
    });
    const timedOut = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve(true);
      }, timeoutMs);
      ws.on('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
      ws.on('error', (e: Error) => {
        clearTimeout(timer);
        reject(new RunError(shown, null, '', e.message, 'could not reach the pod'));
      });
    });
    const result: ExecResult = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode: exitCodeOf(status) };
    if (timedOut) throw new RunError(shown, null, result.stdout, result.stderr, `timed out after ${timeoutMs} ms`);
    if (result.exitCode === null && status?.message) result.stderr += status.message;
    if (result.exitCode !== 0 && !opts.nothrow) throw new RunError(shown, result.exitCode, result.stdout, result.stderr);
    return result;
  };
}
