import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunError } from '../../errors.ts';
import { recordingShell, shell } from '../../exec/shell.ts';
import type { KindContext } from './context.ts';
import { clientNodePodExec, exitCodeOf, KindClientPod, KindNode, NODE_PRIVATE_DIR } from './node.ts';

function ctxWith(reply: (argv: readonly string[]) => string = () => '') {
  const shell = recordingShell(reply);
  const ctx: KindContext = { shell, cluster: 'c', kubeconfig: '/k', podExec: async () => ({ stdout: '', stderr: '', exitCode: 0 }) };
  return { ctx, calls: shell.calls };
}

describe('KindNode: the seam through docker exec', () => {
  it('runs argv in the node container, with -i only when there is stdin and env inside the node', async () => {
    const { ctx, calls } = ctxWith();
    const node = new KindNode(ctx, 'node-3', 'c-worker2', '172.18.0.4', '10.244.2.0/24');
    await node.exec(['ip', 'neigh', 'show', 'dev', 'flannel.1']);
    await node.exec(['conntrack', '-F'], { env: { LC_ALL: 'C' } });
    expect(calls).toEqual([
      ['docker', 'exec', 'c-worker2', 'ip', 'neigh', 'show', 'dev', 'flannel.1'],
      ['docker', 'exec', '-e', 'LC_ALL=C', 'c-worker2', 'conntrack', '-F'],
    ]);
  });

  it('never writes a node\'s real files: a private copy, bind-mounted for this object\'s own commands only', async () => {
    const { ctx, calls } = ctxWith();
    const node = new KindNode(ctx, 'node-3', 'c-worker2', '172.18.0.4', '10.244.2.0/24');
    const probe = node.view();
    await probe.writeFile('/etc/resolv.conf', 'nameserver 10.96.0.10\n');
    await probe.exec(['/usr/local/bin/vxprobe', '-c', '1', 'web']);
    await node.exec(['cat', '/etc/resolv.conf']);
    const writes = calls.filter((c) => c.includes('cat > "$1"'));
    expect(writes).toHaveLength(1);
    expect(writes[0]!.at(-1)).toMatch(new RegExp(`^${NODE_PRIVATE_DIR}/\\d+_etc_resolv\\.conf$`));
    expect(calls.some((c) => c.at(-1) === '/etc/resolv.conf' && c.includes('cat > "$1"'))).toBe(false);
    const run = calls.find((c) => c.includes('/usr/local/bin/vxprobe'))!;
    expect(run.slice(0, 7)).toEqual(['docker', 'exec', 'c-worker2', 'unshare', '--mount', 'sh', '-c']);
    expect(run.slice(8)).toEqual(['sh', writes[0]!.at(-1), '/etc/resolv.conf', '--', '/usr/local/bin/vxprobe', '-c', '1', 'web']);
    // the node itself (and any other view) is not affected
    expect(calls.at(-1)).toEqual(['docker', 'exec', 'c-worker2', 'cat', '/etc/resolv.conf']);
  });

  it.skipIf(process.getuid?.() !== 0)('the private mount works in a real mount namespace and leaves the real file as it was (root)', async () => {
    // `docker exec <container>` replaced by running argv on this machine: the mount script itself is tested.
    const ctx: KindContext = { ...ctxWith().ctx, shell: (argv, opts) => shell(argv.slice(argv.indexOf('c-test') + 1), opts) };
    const dir = mkdtempSync(join(tmpdir(), 'vxchaos-private-'));
    const target = join(dir, 'resolv.conf');
    writeFileSync(target, 'nameserver 192.0.2.53\n');
    try {
      const view = new KindNode(ctx, 'node-1', 'c-test', '172.18.0.2', '10.244.0.0/24').view();
      await view.writeFile(target, 'nameserver 10.96.0.10\n');
      expect((await view.exec(['cat', target])).stdout).toBe('nameserver 10.96.0.10\n');
      expect(await view.readFile(target)).toBe('nameserver 10.96.0.10\n');
      expect(readFileSync(target, 'utf8')).toBe('nameserver 192.0.2.53\n');
      // the bind lived only as long as that command's mount namespace
      expect((await shell(['cat', target])).stdout).toBe('nameserver 192.0.2.53\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(NODE_PRIVATE_DIR, { recursive: true, force: true });
    }
  });

  it('spawns a daemon in the background, returns its pid and stops it (the script run by a real sh)', async () => {
    // `docker exec <container>` replaced by running argv here: the spawn script itself is what is tested.
    const calls: string[][] = [];
    const ctx: KindContext = {
      ...ctxWith().ctx,
      shell: (argv, opts) => {
        calls.push([...argv]);
        return shell(argv.slice(3), opts);
      },
    };
    const node = new KindNode(ctx, 'node-1', 'c-control-plane', '172.18.0.2', '10.244.0.0/24');
    const d = await node.spawn(['sleep', '30'], { name: `vxchaos-test-${process.pid}` });
    expect(d.pid).toBeGreaterThan(1);
    expect(calls[0]?.slice(0, 5)).toEqual(['docker', 'exec', 'c-control-plane', 'sh', '-c']);
    expect(calls[0]?.slice(6)).toEqual([`vxchaos-test-${process.pid}`, 'sleep', '30']);
    expect((await shell(['kill', '-0', String(d.pid)], { nothrow: true })).exitCode).toBe(0);
    await d.stop();
    expect((await shell(['kill', '-0', String(d.pid)], { nothrow: true })).exitCode).not.toBe(0);
    expect(calls[1]).toEqual(['docker', 'exec', 'c-control-plane', 'kill', '-TERM', String(d.pid)]);
    rmSync(`/tmp/vxchaos-vxchaos-test-${process.pid}.log`, { force: true });
  });
});

describe('exit codes from the exec API status', () => {
  it('maps Success to 0 and NonZeroExitCode to its code', () => {
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
    expect(exitCodeOf({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '2' }] } })).toBe(2);
    expect(exitCodeOf({ status: 'Failure', message: 'executable file not found' })).toBeNull();
    expect(exitCodeOf(undefined)).toBeNull();
  });
});

/**
 * A loopback stand-in for the API server's exec endpoint (v5.channel.k8s.io framing: a channel byte, then
 * data; 255 + channel closes a stream; channel 3 carries the final status). It lets the real client-node
 * Exec code run end to end without a cluster.
 */
describe('pod exec through @kubernetes/client-node', () => {
  const require = createRequire(import.meta.url);
  // ws ships no types here; only the server pieces below are used.
  const { WebSocketServer } = require('ws') as {
    WebSocketServer: new (o: { port: number; host: string }) => {
      on(ev: 'connection', fn: (sock: FakeSocket, req: { url?: string }) => void): void;
      on(ev: 'listening', fn: () => void): void;
      address(): AddressInfo;
      close(): void;
    };
  };
  interface FakeSocket {
    protocol: string;
    send(b: Buffer): void;
    close(): void;
    on(ev: 'message', fn: (b: Buffer) => void): void;
  }
  let server: InstanceType<typeof WebSocketServer>;
  let dir: string;
  let kubeconfig: string;
  const seen: { path: string; command: string[]; protocol: string }[] = [];

  beforeAll(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => server.on('listening', resolve));
    server.on('connection', (sock, req) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const command = url.searchParams.getAll('command');
      seen.push({ path: url.pathname, command, protocol: sock.protocol });
      const status = (s: object) => sock.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(s))]));
      const stdin: Buffer[] = [];
      if (command[0] === 'cat') {
        sock.on('message', (b) => {
          if (b[0] === 0) stdin.push(b.subarray(1));
          if (b[0] === 255 && b[1] === 0) {
            sock.send(Buffer.concat([Buffer.from([1]), ...stdin]));
            status({ status: 'Success' });
          }
        });
      } else if (command[0] === 'false') {
        sock.send(Buffer.concat([Buffer.from([2]), Buffer.from('boom\n')]));
        status({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
      }
      // anything else never answers: the caller's timeout must end it
    });
    dir = mkdtempSync(join(tmpdir(), 'vxchaos-kind-exec-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "http://127.0.0.1:${server.address().port}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: kind-c, context: {cluster: c, user: u}}]',
        'current-context: kind-c',
        '',
      ].join('\n'),
    );
  });

  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ref = { namespace: 'default', name: 'vxchaos-client-musl', container: 'probe' };

  it('sends stdin, closes only stdin, and returns stdout with exit 0 (writeFile relies on this)', async () => {
    const exec = clientNodePodExec(kubeconfig, 'kind-c');
    const r = await exec(ref, ['cat'], { input: 'nameserver 169.254.20.10\n' });
    expect(r).toEqual({ stdout: 'nameserver 169.254.20.10\n', stderr: '', exitCode: 0 });
    expect(seen.at(-1)).toEqual({ path: '/api/v1/namespaces/default/pods/vxchaos-client-musl/exec', command: ['cat'], protocol: 'v5.channel.k8s.io' });
  });

  it('carries a non-zero exit code: thrown with the kubectl equivalent, or as data with nothrow', async () => {
    const exec = clientNodePodExec(kubeconfig, 'kind-c');
    const r = await exec(ref, ['false'], { nothrow: true });
    expect(r).toMatchObject({ exitCode: 3, stderr: 'boom\n' });
    const err = await exec(ref, ['false']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).argv).toEqual(['kubectl', '--kubeconfig', kubeconfig, '--context', 'kind-c', 'exec', '-n', 'default', 'vxchaos-client-musl', '-c', 'probe', '--', 'false']);
  });

  it('is bounded by timeoutMs', async () => {
    const exec = clientNodePodExec(kubeconfig, 'kind-c');
    const t0 = Date.now();
    await expect(exec(ref, ['sleep', '100'], { timeoutMs: 300 })).rejects.toThrow(/timed out after 300 ms/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('gives ClientPod the probe path of the images', () => {
    const pod = new KindClientPod(clientNodePodExec(kubeconfig, 'kind-c'), ref, 'node-1', '10.244.0.5', 'musl');
    expect(pod.probe).toEqual(['/usr/local/bin/vxprobe']);
    expect(pod.role).toBe('client');
  });
});
