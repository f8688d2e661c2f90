import pRetry from 'p-retry';
import { VxError } from '../errors.ts';
import type { ClusterNode, Daemon } from '../providers/provider.ts';
import type { Mitigation } from './mitigation.ts';
import { editResolvConf, withNameservers } from './resolv-options.ts';

/** node-local-dns's defaults: the link-local address and the interface that carries it. */
export const NODELOCAL_IP = '169.254.20.10';
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
 * A caching forwarder with node-local-dns's Corefile semantics: listens on the link-local address only,
 * caches (success 30 s, denial 5 s), and forwards everything to the cluster DNS ClusterIP over TCP
 * (`force_tcp`): one connection carries many queries, so no UDP pair races in conntrack.
 */
export function nodeLocalUnboundConf(clusterIP: string, ip = NODELOCAL_IP): string {
  return [
    'server:',
    `  interface: ${ip}`,
    '  port: 53',
    '  do-ip6: no',
    '  access-control: 0.0.0.0/0 allow',
    '  username: ""',
    '  chroot: ""',
    '  directory: "/"',
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    '  num-threads: 1',
    // Without large socket buffers unbound drops bursts of queries.
    '  so-rcvbuf: 8m',
    '  so-sndbuf: 8m',
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
}

async function stopNodeCache(c: NodeCache): Promise<void> {
  await c.daemon?.stop();
  c.daemon = undefined;
  for (const r of c.rules.splice(0).reverse()) await c.node.exec(iptablesArgv('-D', r), { nothrow: true });
  if (c.link) await c.node.exec(['ip', 'link', 'del', NODELOCAL_LINK], { nothrow: true });
  c.link = false;
  await c.node.exec(['rm', '-f', CONF], { nothrow: true });
}

/** One node's cache: the address on a port-less bridge (no `dummy` driver here), the rules, the forwarder. */
async function startNodeCache(node: ClusterNode, clusterIP: string, c: NodeCache): Promise<void> {
  c.link = true;
  await node.exec(['ip', 'link', 'add', NODELOCAL_LINK, 'type', 'bridge']);
  await node.exec(['ip', 'addr', 'add', `${NODELOCAL_IP}/32`, 'dev', NODELOCAL_LINK]);
  await node.exec(['ip', 'link', 'set', NODELOCAL_LINK, 'up']);
  for (const r of nodeLocalRules()) {
    c.rules.push(r);
    await node.exec(iptablesArgv('-I', r));
  }
  await node.writeFile(CONF, nodeLocalUnboundConf(clusterIP));
  c.daemon = await node.spawn(['unbound', '-d', '-p', '-c', CONF], { name: 'nodelocaldns' });
}

/**
 * Seed 003's lasting fix, NodeLocal DNSCache, as the DaemonSet does it on every node: pods ask a cache on
 * their own node at 169.254.20.10 (untracked), the cache asks the cluster DNS over TCP.
 */
export const nodeLocalDns: Mitigation = {
  name: 'nodelocaldns',
  description: 'NodeLocal DNSCache: a cache per node on 169.254.20.10 (NOTRACK), TCP to the cluster DNS, clients pointed at it',
  async apply(ctx) {
    const clusterIP = ctx.cluster.topology.dns.clusterIP;
    const name = `kube-dns.kube-system.svc.${ctx.cluster.topology.dns.domain}`;
    const caches: NodeCache[] = ctx.cluster.nodes.map((node) => ({ node, rules: [], link: false }));
    let resolv: Awaited<ReturnType<typeof editResolvConf>> | undefined;
    const revert = async () => {
      await resolv?.restore();
      resolv = undefined;
      await Promise.all(caches.splice(0).map(stopNodeCache));
    };
    try {
      await Promise.all(caches.map((c) => startNodeCache(c.node, clusterIP, c)));
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
        throw new VxError('E_MITIGATION', `nodelocaldns not ready: ${e.message}`);
      });
      resolv = await editResolvConf(ctx.client, (conf) => withNameservers(conf, [NODELOCAL_IP]));
      ctx.log(`nodelocaldns: ${caches.length} node caches on ${NODELOCAL_IP}, ${ctx.client.name} → ${NODELOCAL_IP}`);
    } catch (e) {
      await revert();
      throw e;
    }
    return { counters: { 'nodelocaldns.nodes': caches.length }, revert };
  },
};
