import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { RunError } from '../../errors.ts';
import type { ExecOptions, ExecResult } from '../../exec/shell.ts';
import type { ClusterNode, Daemon, SpawnOptions } from '../provider.ts';
import { iptablesArgv, iptablesRestoreInput, NetnsNodeLocalDns, NODELOCAL_IP, nodeLocalRules, nodeLocalUnboundConf, tablesWithRules } from './nodelocaldns.ts';

describe('nodelocaldns on netns nodes', () => {
  it('programs node-cache\'s NOTRACK rules for the link-local address, both protocols', () => {
    const rules = nodeLocalRules();
    const notrack = rules.filter((r) => r.table === 'raw').map((r) => `${r.chain} ${r.spec.slice(0, 8).join(' ')}`);
    for (const p of ['udp', 'tcp']) {
      expect(notrack).toContain(`PREROUTING -p ${p} -d 169.254.20.10 --dport 53 -j NOTRACK`);
      expect(notrack).toContain(`OUTPUT -p ${p} -s 169.254.20.10 --sport 53 -j NOTRACK`);
      expect(notrack).toContain(`OUTPUT -p ${p} -d 169.254.20.10 --dport 53 -j NOTRACK`);
    }
    expect(iptablesArgv('-I', rules[0]!).slice(0, 7)).toEqual(['iptables', '-w', '5', '-t', 'raw', '-I', 'PREROUTING']);
    expect(iptablesArgv('-D', rules[0]!).slice(3)).toEqual(iptablesArgv('-I', rules[0]!).slice(3).map((a) => (a === '-I' ? '-D' : a)));
  });

  it('caches and forwards to the cluster DNS over TCP, listening on the link-local address only', () => {
    const conf = nodeLocalUnboundConf('10.96.0.10');
    expect(conf).toMatch(/^ {2}interface: 169\.254\.20\.10$/m);
    expect(conf).toMatch(/forward-zone:\n {2}name: "\."\n {2}forward-addr: 10\.96\.0\.10\n {2}forward-tcp-upstream: yes/);
    expect(conf).toContain('cache-max-negative-ttl: 5');
  });
});

const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));

/** A node that records what is done to it through the seam; `fail` makes one command fail as a real one would. */
class FakeNode implements ClusterNode {
  readonly ip = '192.0.2.1';
  readonly podSubnet = '10.244.9.0/24';
  readonly log: string[] = [];
  /** What each command got on stdin, by its log line's index. */
  readonly inputs = new Map<number, string>();
  readonly files = new Map<string, string>();
  running = 0;
  constructor(
    readonly name: string,
    private readonly fail?: (argv: readonly string[], input?: string) => boolean,
  ) {}
  async exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    this.log.push(argv.join(' '));
    if (opts?.input !== undefined) this.inputs.set(this.log.length - 1, opts.input);
    if (this.fail?.(argv, opts?.input)) {
      if (opts?.nothrow) return { stdout: '', stderr: 'boom', exitCode: 1 };
      throw new RunError(argv, 1, '', 'boom');
    }
    return { stdout: argv[0] === 'dig' ? `${topology.dns.clusterIP}\n` : '', stderr: '', exitCode: 0 };
  }
  async writeFile(path: string, content: string): Promise<void> {
    this.log.push(`write ${path}`);
    this.files.set(path, content);
  }
  async readFile(path: string): Promise<string> {
    return this.files.get(path) ?? '';
  }
  async spawn(argv: readonly string[], opts: SpawnOptions): Promise<Daemon> {
    this.log.push(`spawn ${opts.name}: ${argv.join(' ')}`);
    this.running++;
    return { pid: 1, stop: async () => void (this.log.push(`stop ${opts.name}`), this.running--) };
  }
}

describe('NetnsNodeLocalDns (the nodeLocalDns control of the netns provider)', () => {
  it('enable: link, address, rules, config and cache on every node, ready when each answers; disable undoes it in reverse', async () => {
    const nodes = ['node-1', 'node-2', 'node-3'].map((n) => new FakeNode(n));
    const control = new NetnsNodeLocalDns(topology, nodes);
    expect(await control.enable()).toEqual({ address: NODELOCAL_IP });
    expect(await control.enable()).toEqual({ address: NODELOCAL_IP });
    for (const n of nodes) {
      // One process for the link, one for all ten rules (as many -I as the single calls, in their order).
      expect(n.log.slice(0, 4)).toEqual(['ip -batch -', 'nft list tables', 'iptables-restore --noflush', 'nft list tables']);
      expect(n.inputs.get(0)).toBe(`link add nodelocaldns type bridge\naddr add ${NODELOCAL_IP}/32 dev nodelocaldns\nlink set nodelocaldns up\n`);
      expect(n.inputs.get(2)).toBe(iptablesRestoreInput('-I', nodeLocalRules()));
      expect(n.files.get('/etc/unbound/nodelocaldns.conf')).toBe(nodeLocalUnboundConf(topology.dns.clusterIP));
      expect(n.log).toContain('spawn nodelocaldns: unbound -d -p -c /etc/unbound/nodelocaldns.conf');
      expect(n.log.filter((l) => l.startsWith('dig '))).toEqual([`dig +time=1 +tries=1 +short @${NODELOCAL_IP} kube-dns.kube-system.svc.cluster.local`]);
      expect(n.running).toBe(1);
    }
    const mark = nodes.map((n) => n.log.length);
    await control.disable();
    nodes.forEach((n, i) => {
      const undo = n.log.slice(mark[i]);
      expect(undo).toEqual(['stop nodelocaldns', 'iptables-restore --noflush', 'ip link del nodelocaldns', 'rm -f /etc/unbound/nodelocaldns.conf']);
      expect(n.inputs.get(mark[i]! + 1)).toBe(iptablesRestoreInput('-D', nodeLocalRules().reverse()));
      expect(n.running).toBe(0);
    });
    await control.disable();
    expect(nodes.map((n) => n.log.length)).toEqual(nodes.map((n, i) => mark[i]! + 4));
  });

  it('batches as the single calls would: -I in order per table, the comment quoted', () => {
    const text = iptablesRestoreInput('-I', nodeLocalRules());
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('*raw');
    expect(lines.filter((l) => l === 'COMMIT')).toHaveLength(2);
    const raw = lines.slice(1, lines.indexOf('COMMIT'));
    expect(raw).toEqual(nodeLocalRules().filter((r) => r.table === 'raw').map((r) => iptablesArgv('-I', r).slice(5).map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')));
    expect(tablesWithRules('*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n-A INPUT -j ACCEPT\nCOMMIT\n')).toEqual(new Set(['filter']));
  });

  it('a failed start on one node leaves nothing behind on any node', async () => {
    // node-2's restore fails half-way (the raw table committed, filter not): the -D batch then fails too.
    const nodes = [new FakeNode('node-1'), new FakeNode('node-2', (argv) => argv[0] === 'iptables-restore'), new FakeNode('node-3')];
    const control = new NetnsNodeLocalDns(topology, nodes);
    await expect(control.enable()).rejects.toThrow(/iptables-restore --noflush/);
    for (const n of nodes) {
      expect(n.running).toBe(0);
      expect(n.log.at(-1)).toBe('rm -f /etc/unbound/nodelocaldns.conf');
      expect(n.log.at(-2)).toBe('ip link del nodelocaldns');
    }
    // node-2's rules are deleted one by one, each whether or not it got in.
    expect(nodes[1]!.log.filter((l) => l.includes(' -D '))).toEqual(nodeLocalRules().reverse().map((r) => iptablesArgv('-D', r).join(' ')));
    expect(nodes[0]!.log.filter((l) => l.includes(' -D '))).toEqual([]);
    await control.disable(); // nothing left to do
  });
});
