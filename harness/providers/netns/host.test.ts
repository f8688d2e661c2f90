import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../../exec/shell.ts';
import { CountingHost } from './counting-host.ts';
import type { Host } from './host.ts';
import { LocalHost } from './local-host.ts';

// The ledger reads its state dir at import: point it at a temp dir first (no root needed).
const stateDir = mkdtempSync(join(tmpdir(), 'vxc-state-'));
process.env.VXCHAOS_STATE_DIR = stateDir;
const { Ledger, runOfNamespace } = await import('./ledger.ts');
const { detectKernel } = await import('./provider.ts');

afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** LocalHost without its optional members: what a minimal remote host offers. */
class MinimalHost implements Host {
  readonly describe = 'minimal';
  private readonly local = new LocalHost();
  constructor(private readonly uname?: string) {}
  run(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    if (this.uname && argv.join(' ') === 'uname -r') return Promise.resolve({ stdout: `${this.uname}\n`, stderr: '', exitCode: 0 });
    return this.local.run(argv, opts);
  }
  writeFile = (p: string, c: string) => this.local.writeFile(p, c);
  readFile = (p: string) => this.local.readFile(p);
  mkdir = (p: string) => this.local.mkdir(p);
  remove = (p: string) => this.local.remove(p);
  exists = (p: string) => this.local.exists(p);
  spawn: Host['spawn'] = (a, o) => this.local.spawn(a, o);
  procStart = (pid: number) => this.local.procStart(pid);
  kill = (pid: number, s: NodeJS.Signals) => this.local.kill(pid, s);
}

describe('the netns provider reaches the machine only through the Host', () => {
  it('no provider file but the LocalHost and the local log writer imports node:fs, node:child_process or calls process.kill', () => {
    const dir = import.meta.dirname;
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !['local-host.ts', 'logs.ts'].includes(f));
    expect(files).toEqual(expect.arrayContaining(['node.ts', 'network.ts', 'cni.ts', 'dns.ts', 'flannel.ts', 'kube-proxy.ts', 'nodelocaldns.ts', 'provider.ts', 'ledger.ts']));
    const offenders = files.filter((f) => /from 'node:(fs|fs\/promises|child_process)'|process\.kill\(|from 'zx'/.test(readFileSync(join(dir, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});

describe('Ledger through a Host', () => {
  it('appends in order through appendFile, and through `sh` on a host without it', async () => {
    for (const host of [new CountingHost(new LocalHost()), new CountingHost(new MinimalHost())]) {
      const runId = `t${host.calls.length}${Math.random().toString(16).slice(2, 8)}`;
      const ledger = await Ledger.open(host, runId);
      // Recorded concurrently, as concurrent node work does: the file keeps the call order.
      await Promise.all([1, 2, 3, 4].map((i) => ledger.record({ kind: 'netns', name: `vxc-${runId}-n${i}` })));
      const entries = await Ledger.load(host, runId);
      expect(entries.map((e) => (e.kind === 'netns' ? e.name : e.kind))).toEqual(['path', ...[1, 2, 3, 4].map((i) => `vxc-${runId}-n${i}`)]);
      const viaSh = host.calls.filter((c) => c.member === 'run' && c.what[0] === 'sh').length;
      const viaAppend = host.calls.filter((c) => c.member === 'appendFile').length;
      expect([viaAppend, viaSh]).toEqual(host.describe === 'local' ? [5, 0] : [0, 5]);
      expect(await Ledger.runs(host)).toContain(runId);
      await ledger.teardown(); // only a path: nothing needs root
      expect(await Ledger.runs(host)).not.toContain(runId);
    }
  });

  it('groups namespaces by the longest known run id (bench run ids contain dashes)', () => {
    expect(runOfNamespace('vxc-ab12cd-n3r1-node-1', ['ab12cd', 'ab12cd-n3r1'])).toBe('ab12cd-n3r1');
    expect(runOfNamespace('vxc-ab12cd-node-1', ['ab12cd', 'ab12cd-n3r1'])).toBe('ab12cd');
    expect(runOfNamespace('vxc-ff00ee-fabric', [])).toBe('ff00ee');
  });
});

describe('detectKernel', () => {
  it('drop reasons from 5.17, nft packet-path set deletes from 5.4', async () => {
    expect(await detectKernel(new MinimalHost('5.16.20-generic'))).toMatchObject({ dropReasons: false });
    expect(await detectKernel(new MinimalHost('5.17.0-1-amd64'))).toMatchObject({ dropReasons: true });
    expect((await detectKernel(new MinimalHost('4.19.0-27-amd64'))).nftDynamicSets).toBe(false);
    expect(await detectKernel(new MinimalHost('6.1.0-18-amd64'))).toMatchObject({ dropReasons: true });
  });
});
