import { join } from 'node:path';
import { VxError } from '../../errors.ts';
import type { Topology } from '../../config/topology.ts';
import type { Host } from './host.ts';
import type { NetnsNode, NetnsContext } from './node.ts';
import { addNamespaces, ipBatch } from './network.ts';

/** Debian's containernetworking-plugins install here; /opt/cni/bin is the upstream default. */
export const CNI_PATHS = ['/usr/lib/cni', '/opt/cni/bin'];

const binDirs = new WeakMap<Host, Promise<string>>();

/** Where the host keeps the CNI plugins; looked up once per host. */
export function cniBinDir(host: Host): Promise<string> {
  let dir = binDirs.get(host);
  if (!dir) {
    dir = (async () => {
      for (const d of CNI_PATHS) {
        if ((await host.exists(join(d, 'bridge'))) && (await host.exists(join(d, 'host-local')))) return d;
      }
      throw new VxError('E_MISSING_TOOL', 'CNI plugins bridge + host-local not found in /usr/lib/cni or /opt/cni/bin: apt-get install -y containernetworking-plugins');
    })();
    dir.catch(() => binDirs.delete(host));
    binDirs.set(host, dir);
  }
  return dir;
}

/**
 * The delegate config flannel's CNI plugin hands to `bridge` (flannel-io/cni-plugin: name, type bridge,
 * ipMasq = !flanneld --ip-masq, mtu from subnet.env, isGateway, plus kube-flannel's cni-conf
 * hairpinMode/isDefaultGateway; host-local IPAM over the node's subnet with a route to the whole Network).
 */
export function flannelDelegateConfig(topo: Topology, podSubnet: string, dataDir: string): Record<string, unknown> {
  return {
    cniVersion: '0.3.1',
    name: 'cbr0',
    type: 'bridge',
    bridge: 'cni0',
    mtu: topo.mtu,
    ipMasq: false,
    isGateway: true,
    isDefaultGateway: true,
    hairpinMode: true,
    ipam: {
      type: 'host-local',
      dataDir,
      ranges: [[{ subnet: podSubnet }]],
      routes: [{ dst: topo.pod.text }],
    },
  };
}

export interface CniResult {
  ip: string;
  raw: unknown;
}

/**
 * Creates the pod's namespace (unless the caller made it in a batch: `namespaceMade`) and runs CNI ADD as
 * kubelet does: env vars, config on stdin, in the node.
 */
export async function addPod(ctx: NetnsContext, topo: Topology, node: NetnsNode, podNetns: string, containerId: string, opts: { namespaceMade?: boolean } = {}): Promise<CniResult> {
  if (!opts.namespaceMade) await addNamespaces(ctx, [podNetns]);
  const binDir = await cniBinDir(ctx.host);
  const conf = flannelDelegateConfig(topo, node.podSubnet, join(ctx.ledger.dir, 'cni', node.name));
  // Loopback and the CNI ADD (eth0) touch different links of the pod: one does not wait for the other.
  const [, r] = await Promise.all([
    ipBatch(ctx, podNetns, ['link set lo up']),
    node.exec([join(binDir, 'bridge')], {
      env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: `/run/netns/${podNetns}`, CNI_IFNAME: 'eth0', CNI_PATH: binDir },
      input: JSON.stringify(conf),
      timeoutMs: 20_000,
    }),
  ]);
  const raw = JSON.parse(r.stdout) as { ips?: { address?: string }[] };
  const address = raw.ips?.[0]?.address;
  if (!address) throw new VxError('E_CNI', `CNI ADD for ${podNetns} returned no IP: ${r.stdout}`);
  return { ip: address.split('/')[0]!, raw };
}
