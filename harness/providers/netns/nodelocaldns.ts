import pRetry from 'p-retry';
import type { Topology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import { NODE_LOCAL_DNS_ADDRESS, type ClusterNode, type Daemon, type NodeLocalDnsControl } from '../provider.ts';
import { unboundServer } from './dns.ts';

/** node-local-dns's defaults: the link-local address and the interface that carries it. */
export const NODELOCAL_IP = NODE_LOCAL_DNS_ADDRESS;
export const NODELOCAL_LINK = 'nodelocaldns';
const CONF = '/etc/unbound/nodelocaldns.conf';
const COMMENT = 'NodeLocal DNS Cache: skip conntrack';

export interface IptablesRule {
  table: 'raw' | 'filter';
  chain: string;
  spec: string[];
}

/**
 * The rules node-cache (k8s-dns node-local-dns) programs: NOTRACK so queries to the local address never
 * create conntrack entries (no DNAT, no insert race), ACCEPT so a restrictive filter table lets them in.
 */
export function nodeLocalRules(ip = NODELOCAL_IP, port = 53): IptablesRule[] {
  const rules: IptablesRule[] = [];
  const rule = (table: IptablesRule['table'], chain: string, spec: string) =>
    rules.push({ table, chain, spec: [...spec.split(' '), '-m', 'comment', '--comment', COMMENT] });
  for (const proto of ['tcp', 'udp']) {
    rule('raw', 'PREROUTING', `-p ${proto} -d ${ip} --dport ${port} -j NOTRACK`);
    rule('filter', 'INPUT', `-p ${proto} -d ${ip} --dport ${port} -j ACCEPT`);
    rule('raw', 'OUTPUT', `-p ${proto} -s ${ip} --sport ${port} -j NOTRACK`);
    rule('filter', 'OUTPUT', `-p ${proto} -s ${ip} --sport ${port} -j ACCEPT`);
    // Queries from the node's own processes (hostNetwork pods).
    rule('raw', 'OUTPUT', `-p ${proto} -d ${ip} --dport ${port} -j NOTRACK`);
  }
  return rules;
}

/** iptables argv to insert (node-cache prepends) or delete a rule. */
export function iptablesArgv(op: '-I' | '-D', r: IptablesRule): string[] {
  return ['iptables', '-w', '5', '-t', r.table, op, r.chain, ...r.spec];
}

/**
 * The same inserts or deletes as one `iptables-restore --noflush` input, in the same order: one process per
 * node instead of one per rule (each `-I` still prepends, so the result is what the single calls give).
 */
export function iptablesRestoreInput(op: '-I' | '-D', rules: readonly IptablesRule[]): string {
  const quote = (a: string) => (/[\s"]/.test(a) ? `"${a.replace(/"/g, '\\"')}"` : a);
  const tables = [...new Set(rules.map((r) => r.table))];
  return tables.map((t) => [`*${t}`, ...rules.filter((r) => r.table === t).map((r) => [op, r.chain, ...r.spec].map(quote).join(' ')), 'COMMIT'].join('\n')).join('\n') + '\n';
}

/**
 * A caching forwarder with node-local-dns's Corefile semantics: listens on the link-local address only,
 * caches (success 30 s, denial 5 s), and forwards everything to the cluster DNS ClusterIP over TCP
 * (`force_tcp`): one connection carries many queries, so no UDP pair races in conntrack.
 */
export function nodeLocalUnboundConf(clusterIP: string, ip = NODELOCAL_IP): string {
  return [
    ...unboundServer(ip, '/'),
    '  module-config: "iterator"',
    '  qname-minimisation: no',
    '  do-not-query-localhost: no',
    '  cache-max-ttl: 30',
    '  cache-max-negative-ttl: 5',
    // Reverse zones of private ranges go to the cluster DNS too, not to unbound's built-in empty zones.
    '  unblock-lan-zones: yes',
    '  insecure-lan-zones: yes',
    'forward-zone:',
    '  name: "."',
    `  forward-addr: ${clusterIP}`,
    '  forward-tcp-upstream: yes',
    '',
  ].join('\n');
}

interface NodeCache {
  node: ClusterNode;
  daemon?: Daemon;
  rules: IptablesRule[];
  link: boolean;
  /** nft tables (iptables-nft's raw, filter) that the rules brought into being: removed again when empty. */
  tablesMade: string[];
}

const nftTables = async (node: ClusterNode) => (await node.exec(['nft', 'list', 'tables'], { nothrow: true })).stdout.split('\n').filter(Boolean);

/** Tables of `iptables-save` output that hold at least one rule. */
export function tablesWithRules(save: string): Set<string> {
  const out = new Set<string>();
  let table = '';
  for (const l of save.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1).trim();
    else if (l.startsWith('-A ')) out.add(table);
  }
  return out;
}

/** Undoes exactly what startNodeCache got to, in reverse order; safe on a half-started cache. */
async function stopNodeCache(c: NodeCache): Promise<void> {
  await c.daemon?.stop();
  c.daemon = undefined;
  const rules = c.rules.splice(0).reverse();
  if (rules.length) {
    const all = await c.node.exec(['iptables-restore', '--noflush'], { input: iptablesRestoreInput('-D', rules), nothrow: true });
    // One of them gone already (a half-done start, someone else's hand): each of the others on its own.
    if (all.exitCode !== 0) for (const r of rules) await c.node.exec(iptablesArgv('-D', r), { nothrow: true });
  }
  // Undo restores what was found: a table the cache's rules created goes too, unless someone else's rules are in it.
  const made = c.tablesMade.splice(0).map((t) => t.split(' ').pop()!);
  if (made.length) {
    const inUse = tablesWithRules((await c.node.exec(['iptables-save'], { nothrow: true })).stdout);
    const empty = made.filter((t) => !inUse.has(t));
    if (empty.length) await c.node.exec(['nft', '-f', '-'], { input: empty.map((t) => `delete table ip ${t}\n`).join(''), nothrow: true });
  }
  if (c.link) await c.node.exec(['ip', 'link', 'del', NODELOCAL_LINK], { nothrow: true });
  c.link = false;
  await c.node.exec(['rm', '-f', CONF], { nothrow: true });
}

/** One node's cache: the address on a port-less bridge (no `dummy` driver here), the rules, the forwarder. */
async function startNodeCache(clusterIP: string, c: NodeCache): Promise<void> {
  const { node } = c;
  c.link = true;
  await node.exec(['ip', '-batch', '-'], { input: `link add ${NODELOCAL_LINK} type bridge\naddr add ${NODELOCAL_IP}/32 dev ${NODELOCAL_LINK}\nlink set ${NODELOCAL_LINK} up\n` });
  const tablesBefore = await nftTables(node);
  // Registered before they are applied: a restore that fails half-way is undone rule by rule.
  const rules = nodeLocalRules();
  c.rules.push(...rules);
  await node.exec(['iptables-restore', '--noflush'], { input: iptablesRestoreInput('-I', rules) });
  c.tablesMade = (await nftTables(node)).filter((t) => /^table ip (raw|filter)$/.test(t) && !tablesBefore.includes(t));
  await node.writeFile(CONF, nodeLocalUnboundConf(clusterIP));
  // node.spawn records the pid in the run's ledger: a crashed run's caches go with `vxchaos down`.
  c.daemon = await node.spawn(['unbound', '-d', '-p', '-c', CONF], { name: 'nodelocaldns' });
}

/**
 * NodeLocal DNSCache on netns nodes, as the DaemonSet does it on every node: an unbound cache per node on
 * 169.254.20.10 (untracked), forwarding to the cluster DNS ClusterIP over TCP. Everything goes through the
 * seam (node.exec, node.writeFile, node.spawn); the link and rules live in the node's namespace.
 */
export class NetnsNodeLocalDns implements NodeLocalDnsControl {
  private caches: NodeCache[] = [];
  private enabling?: Promise<{ address: string }>;

  constructor(
    private readonly topo: Topology,
    private readonly nodes: readonly ClusterNode[],
  ) {}

  enable(): Promise<{ address: string }> {
    this.enabling ??= this.start().catch(async (e: unknown) => {
      await this.stopAll();
      throw e;
    });
    return this.enabling;
  }

  async disable(): Promise<void> {
    if (!this.enabling) return;
    await this.enabling.catch(() => undefined);
    await this.stopAll();
  }

  private async stopAll(): Promise<void> {
    this.enabling = undefined;
    await Promise.all(this.caches.splice(0).map(stopNodeCache));
  }

  private async start(): Promise<{ address: string }> {
    const clusterIP = this.topo.dns.clusterIP;
    const name = `kube-dns.kube-system.svc.${this.topo.dns.domain}`;
    const caches: NodeCache[] = this.nodes.map((node) => ({ node, rules: [], link: false, tablesMade: [] }));
    this.caches.push(...caches);
    // Settled, not raced: a failure on one node is cleaned up only after every other start has finished.
    const started = await Promise.allSettled(caches.map((c) => startNodeCache(clusterIP, c)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    // Ready when every node's cache answers a cluster name through its TCP upstream.
    await Promise.all(
      caches.map((c) =>
        pRetry(
          async () => {
            const r = await c.node.exec(['dig', '+time=1', '+tries=1', '+short', `@${NODELOCAL_IP}`, name], { nothrow: true, timeoutMs: 5000 });
            if (r.stdout.trim() !== clusterIP) throw new Error(`${c.node.name}: dig @${NODELOCAL_IP} ${name}: ${r.stdout.trim() || r.stderr.trim() || `exit ${r.exitCode}`}`);
          },
          { retries: 40, minTimeout: 50, maxTimeout: 250, factor: 1.5 },
        ),
      ),
    ).catch((e: Error) => {
      throw new VxError('E_DNS_NOT_READY', `nodelocaldns not ready: ${e.message}`);
    });
    return { address: NODELOCAL_IP };
  }
}
