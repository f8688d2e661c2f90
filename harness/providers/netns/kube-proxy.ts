import { createHash } from 'node:crypto';
import type { Topology } from '../../config/topology.ts';
import { kubePostrouting } from '../../kube/postrouting.ts';

export { kubePostrouting, postroutingOnly } from '../../kube/postrouting.ts';

export interface ServiceEndpoints {
  /** namespace/name:portName, as kube-proxy names a service port. */
  portName: string;
  clusterIP: string;
  port: number;
  protocol: 'tcp' | 'udp';
  endpoints: { ip: string; port: number }[];
}

export type { KubeProxyForm } from '../../kube/postrouting.ts';
type KubeProxyForm = Topology['kubeProxy'];

const base32 = (buf: Buffer): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
};

/** kube-proxy's chain names: "KUBE-SVC-" + base32(sha256(servicePortName + protocol))[:16]. */
export function portProtoHash(s: string): string {
  return base32(createHash('sha256').update(s).digest()).slice(0, 16);
}
export const svcChain = (sp: ServiceEndpoints) => `KUBE-SVC-${portProtoHash(sp.portName + sp.protocol)}`;
export const sepChain = (sp: ServiceEndpoints, ep: { ip: string; port: number }) => `KUBE-SEP-${portProtoHash(sp.portName + sp.protocol + `${ep.ip}:${ep.port}`)}`;

/** flanneld --ip-masq (FLANNEL-POSTRTG): pods reaching outside the pod network are masqueraded. */
export function flannelMasq(topo: Topology, nodeSubnet: string): string[] {
  const net = topo.pod.text;
  return [
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    `-A FLANNEL-POSTRTG -s ${nodeSubnet} -d ${net} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} -d ${nodeSubnet} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG ! -s ${net} -d ${nodeSubnet} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
    `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
  ];
}

/** The nat table kube-proxy (iptables mode) and flanneld program on a node, as iptables-restore input. */
export function natTable(topo: Topology, nodeSubnet: string, services: readonly ServiceEndpoints[], form: KubeProxyForm = topo.kubeProxy): string {
  const chains = new Set(['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'FLANNEL-POSTRTG']);
  const rules: string[] = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    ...kubePostrouting(form),
    ...flannelMasq(topo, nodeSubnet),
  ];
  for (const sp of services) {
    const svc = svcChain(sp);
    chains.add(svc);
    const match = `-d ${sp.clusterIP}/32 -p ${sp.protocol} -m comment --comment "${sp.portName} cluster IP" -m ${sp.protocol} --dport ${sp.port}`;
    rules.push(`-A KUBE-SERVICES ${match} -j ${svc}`);
    // Traffic from outside the pod network (a node's own processes) is marked for SNAT.
    rules.push(`-A ${svc} ! -s ${topo.pod.text} ${match} -j KUBE-MARK-MASQ`);
    sp.endpoints.forEach((ep, i) => {
      const sep = sepChain(sp, ep);
      chains.add(sep);
      const n = sp.endpoints.length - i;
      const spread = n > 1 ? ` -m statistic --mode random --probability ${(1 / n).toFixed(10)}` : '';
      rules.push(`-A ${svc} -m comment --comment "${sp.portName} -> ${ep.ip}:${ep.port}"${spread} -j ${sep}`);
      rules.push(`-A ${sep} -s ${ep.ip}/32 -m comment --comment "${sp.portName}" -j KUBE-MARK-MASQ`);
      rules.push(`-A ${sep} -p ${sp.protocol} -m comment --comment "${sp.portName}" -m ${sp.protocol} -j DNAT --to-destination ${ep.ip}:${ep.port}`);
    });
  }
  return ['*nat', ...[...chains].map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT', ''].join('\n');
}
