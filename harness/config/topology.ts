import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { contains, isIPv4, nth, parseCidr, subnet, type Cidr } from './cidr.ts';
import { loadYaml } from './load.ts';

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

/** Defaults are applied by the schema; this checks what a schema cannot, reporting every problem at once. */
export function validateTopology(file: string, t: TopologyInput): Topology {
  const problems: string[] = [];
  const pod = parseCidr(t.podCIDR);
  const service = parseCidr(t.serviceCIDR);
  const underlay = parseCidr(t.underlayCIDR);
  if (!pod) problems.push(`podCIDR: "${t.podCIDR}" is not an IPv4 CIDR`);
  else if (pod.bits > 16) problems.push(`podCIDR: ${t.podCIDR} must be /16 or wider (one /24 per node)`);
  if (!service) problems.push(`serviceCIDR: "${t.serviceCIDR}" is not an IPv4 CIDR`);
  if (!underlay) problems.push(`underlayCIDR: "${t.underlayCIDR}" is not an IPv4 CIDR`);
  else if (t.nodes.length + 2 > 2 ** (32 - underlay.bits)) problems.push(`underlayCIDR: ${t.underlayCIDR} is too small for ${t.nodes.length} nodes`);
  const nodeNames = new Set<string>();
  t.nodes.forEach((n, i) => {
    if (nodeNames.has(n.name)) problems.push(`nodes[${i}].name: duplicate node "${n.name}"`);
    nodeNames.add(n.name);
  });
  const known = (where: string, n: string) => {
    if (!nodeNames.has(n)) problems.push(`${where}: unknown node "${n}" (nodes: ${[...nodeNames].join(', ')})`);
  };
  if (t.dns.replicas.length === 0) problems.push('dns.replicas: needs at least one node');
  t.dns.replicas.forEach((n, i) => known(`dns.replicas[${i}]`, n));
  if (new Set(t.dns.replicas).size !== t.dns.replicas.length) problems.push('dns.replicas: one replica per node (a node is listed twice)');
  known('clients.node', t.clients.node);
  const ips = new Map<string, string>();
  const checkServiceIP = (where: string, ip: string) => {
    if (!isIPv4(ip)) return problems.push(`${where}: "${ip}" is not an IPv4 address`);
    if (service && !contains(service, ip)) problems.push(`${where}: ${ip} is outside serviceCIDR ${t.serviceCIDR}`);
    const other = ips.get(ip);
    if (other) problems.push(`${where}: ${ip} is already used by ${other}`);
    ips.set(ip, where);
  };
  checkServiceIP('dns.clusterIP', t.dns.clusterIP);
  t.services.forEach((s, i) => {
    checkServiceIP(`services[${i}].clusterIP`, s.clusterIP);
    s.endpoints.forEach((n, j) => known(`services[${i}].endpoints[${j}]`, n));
  });
  if (!/^[a-z0-9.-]+$/.test(t.dns.domain)) problems.push(`dns.domain: "${t.dns.domain}" is not a domain name`);
  if (problems.length > 0 || !pod || !service || !underlay) throw new ConfigError(file, problems);
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

export function loadTopology(file: string, text?: string): Topology {
  return validateTopology(file, loadYaml(file, TopologySchema, text));
}
