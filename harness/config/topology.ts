import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { NODE_LOCAL_DNS_ADDRESS } from '../providers/provider.ts';
import { contains, isIPv4, nth, overlaps, parseCidr, subnet, type Cidr } from './cidr.ts';
import { loadYamlLocated, type Locator } from './load.ts';

const name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/, 'must be a DNS label of at most 20 characters');

const Service = z.strictObject({
  name,
  namespace: name.default('default'),
  clusterIP: z.string().refine(isIPv4, 'must be an IPv4 address'),
  port: z.number().int().min(1).max(65535).default(80),
  protocol: z.enum(['TCP', 'UDP']).default('TCP'),
  targetPort: z.number().int().min(1).max(65535).default(8080),
  /** Nodes that run one endpoint pod each (a TCP server on targetPort). */
  endpoints: z.array(name).default([]),
});

export const TopologySchema = z.strictObject({
  name,
  description: z.string().optional(),
  nodes: z.array(z.strictObject({ name })).min(1, 'needs at least one node').max(200),
  podCIDR: z.string().default('10.244.0.0/16'),
  serviceCIDR: z.string().default('10.96.0.0/12'),
  /** The underlay the nodes' eth0 sit on (kind's docker network is 172.18.0.0/16). */
  underlayCIDR: z.string().default('172.18.0.0/16'),
  mtu: z.number().int().min(1280).max(9000).default(1450),
  vxlan: z.strictObject({ vni: z.number().int().min(1).max(16777215).default(1), port: z.number().int().min(1).max(65535).default(8472) }).prefault({}),
  kubeProxy: z.enum(['historic', 'fixed']).default('historic'),
  dns: z
    .strictObject({
      clusterIP: z.string().default('10.96.0.10'),
      domain: z.string().default('cluster.local'),
      /** One cluster DNS replica per listed node (CoreDNS pods spread across nodes). */
      replicas: z.array(name).default([]),
      /** Names the upstream resolver (in the fabric) answers: seed 000's external name by default. */
      upstream: z.record(z.string(), z.string().refine(isIPv4, 'must be an IPv4 address')).default({ 'test.example.cn': '203.0.113.10' }),
    })
    .prefault({}),
  services: z.array(Service).default([]),
  clients: z.strictObject({ node: name }),
});

export type TopologyInput = z.output<typeof TopologySchema>;

export interface NodeSpec {
  name: string;
  index: number;
  /** Underlay address on eth0. */
  ip: string;
  /** This node's flannel subnet (a /24 of podCIDR); its .0 is flannel.1's address, .1 is cni0. */
  podSubnet: Cidr;
}

export interface Topology extends TopologyInput {
  pod: Cidr;
  service: Cidr;
  underlay: Cidr;
  underlayGateway: string;
  nodeSpecs: NodeSpec[];
}

type Path = readonly (string | number)[];

/** A path as the YAML reader writes it: dns.replicas[1]. */
const dotted = (path: Path) => path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '');

/** In file order, as an editor lists them; problems without a place keep their order after the rest. */
function byLine(a: string, b: string): number {
  const pos = (p: string) => /^(\d+):(\d+): /.exec(p)?.slice(1).map(Number) ?? [Infinity, Infinity];
  const [la, ca] = pos(a);
  const [lb, cb] = pos(b);
  return la! - lb! || ca! - cb! || 0;
}

/** Defaults are applied by the schema; this checks what a schema cannot, reporting every problem at once. */
export function validateTopology(file: string, t: TopologyInput, at: Locator = () => ''): Topology {
  const problems: string[] = [];
  // Each problem starts with `line:col: ` where the YAML says it, so ConfigError can print file:line:col.
  const problem = (path: Path, msg: string) => problems.push(`${at(path)}${dotted(path)}: ${msg}`);
  // A field the file leaves out is located at its parent (see Locator), i.e. it holds the schema default.
  const written = (path: Path) => at(path) === '' || at(path) !== at(path.slice(0, -1));
  const shown = (path: Path, value: string) => (written(path) ? value : `${value} (the default)`);
  const pod = parseCidr(t.podCIDR);
  const service = parseCidr(t.serviceCIDR);
  const underlay = parseCidr(t.underlayCIDR);
  if (!pod) problem(['podCIDR'], `"${t.podCIDR}" is not an IPv4 CIDR`);
  else if (pod.bits > 16) problem(['podCIDR'], `${t.podCIDR} must be /16 or wider (one /24 per node)`);
  if (!service) problem(['serviceCIDR'], `"${t.serviceCIDR}" is not an IPv4 CIDR`);
  if (!underlay) problem(['underlayCIDR'], `"${t.underlayCIDR}" is not an IPv4 CIDR`);
  else if (t.nodes.length + 2 > 2 ** (32 - underlay.bits)) problem(['underlayCIDR'], `${t.underlayCIDR} is too small for ${t.nodes.length} nodes`);
  // Overlapping ranges route pod, service and node traffic into each other: every lookup then fails.
  const ranges = [
    ['podCIDR', pod],
    ['serviceCIDR', service],
    ['underlayCIDR', underlay],
  ] as const;
  ranges.forEach(([field, c], i) => {
    if (!c) return;
    for (const [other, d] of ranges.slice(i + 1)) {
      if (!d || !overlaps(c, d)) continue;
      // Point at the line the user wrote, not at a default they never saw.
      const [here, there] = written([field]) || !written([other]) ? [field, other] : [other, field];
      problem([here], `${shown([here], t[here])} overlaps ${there} ${shown([there], t[there])}`);
    }
    if (contains(c, NODE_LOCAL_DNS_ADDRESS)) problem([field], `${shown([field], t[field])} contains node-local-dns's address ${NODE_LOCAL_DNS_ADDRESS}`);
  });
  const nodeNames = new Set<string>();
  t.nodes.forEach((n, i) => {
    if (nodeNames.has(n.name)) problem(['nodes', i, 'name'], `duplicate node "${n.name}"`);
    nodeNames.add(n.name);
  });
  const known = (path: Path, n: string) => {
    if (!nodeNames.has(n)) problem(path, `unknown node "${n}" (nodes: ${[...nodeNames].join(', ')})`);
  };
  if (t.dns.replicas.length === 0) problem(['dns', 'replicas'], 'needs at least one node');
  t.dns.replicas.forEach((n, i) => known(['dns', 'replicas', i], n));
  if (new Set(t.dns.replicas).size !== t.dns.replicas.length) problem(['dns', 'replicas'], 'one replica per node (a node is listed twice)');
  known(['clients', 'node'], t.clients.node);
  const ips = new Map<string, string>();
  const checkServiceIP = (path: Path, ip: string) => {
    if (!isIPv4(ip)) {
      problem(path, `"${ip}" is not an IPv4 address`);
      return;
    }
    if (service && !contains(service, ip)) problem(path, `${shown(path, ip)} is outside serviceCIDR ${shown(['serviceCIDR'], t.serviceCIDR)}`);
    const other = ips.get(ip);
    if (other) problem(path, `${ip} is already used by ${other}`);
    ips.set(ip, dotted(path));
  };
  checkServiceIP(['dns', 'clusterIP'], t.dns.clusterIP);
  t.services.forEach((s, i) => {
    checkServiceIP(['services', i, 'clusterIP'], s.clusterIP);
    s.endpoints.forEach((n, j) => known(['services', i, 'endpoints', j], n));
  });
  if (!/^[a-z0-9.-]+$/.test(t.dns.domain)) problem(['dns', 'domain'], `"${t.dns.domain}" is not a domain name`);
  if (problems.length > 0 || !pod || !service || !underlay) throw new ConfigError(file, problems.sort(byLine));
  return {
    ...t,
    pod,
    service,
    underlay,
    underlayGateway: nth(underlay, 1),
    nodeSpecs: t.nodes.map((n, index) => ({
      name: n.name,
      index,
      ip: nth(underlay, index + 2),
      podSubnet: subnet(pod, 24, index),
    })),
  };
}

/** Strict load, defaults, then every semantic problem at once with file:line:col; throws ConfigError (exit 2). */
export function loadTopology(file: string, text?: string): Topology {
  const { data, at } = loadYamlLocated(file, TopologySchema, text);
  return validateTopology(file, data, at);
}
