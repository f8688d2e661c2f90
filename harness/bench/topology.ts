import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { CLUSTERS_DIR } from '../config/suite.ts';
import { loadTopology, type Topology } from '../config/topology.ts';
import { VxError } from '../errors.ts';

export const TEMPLATE_TOPOLOGY = `${CLUSTERS_DIR}/three-node.yaml`;

/**
 * The N-node cluster of the lifecycle bench, as YAML in the schema of clusters/three-node.yaml: that file
 * with nodes node-1…node-N and a DNS replica on every node. It is loaded through the same strict
 * load → default → validate path as a cluster file, so the bench cannot build what a user could not.
 */
export function nodeTopologyYaml(n: number, template = readFileSync(TEMPLATE_TOPOLOGY, 'utf8')): string {
  if (!Number.isInteger(n) || n < 2) throw new VxError('E_BENCH', `a bench topology needs at least 2 nodes (got ${n})`);
  const t = parse(template) as Record<string, unknown> & { dns?: Record<string, unknown> };
  const nodes = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
  return stringify({
    ...t,
    name: `bench-${n}-nodes`,
    description: `${n} nodes, a DNS replica on each (vxchaos bench, generated from three-node.yaml)`,
    nodes: nodes.map((name) => ({ name })),
    dns: { ...t.dns, replicas: nodes },
  });
}

export function nodeTopology(n: number, template?: string): Topology {
  return loadTopology(`bench:${n}-nodes`, nodeTopologyYaml(n, template));
}
