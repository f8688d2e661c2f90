import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT } from '../../config/suite.ts';
import type { Topology } from '../../config/topology.ts';
import { NODE_LOCAL_DNS_ADDRESS, type Libc } from '../provider.ts';
import { NODE_LABEL, RUN_LABEL } from './config.ts';

export const PROBE_CONTEXT = join(ROOT, 'images', 'probe');
export const PROBE_DOCKERFILES: Readonly<Record<Libc, string>> = {
  musl: join(PROBE_CONTEXT, 'Dockerfile.alpine'),
  glibc: join(PROBE_CONTEXT, 'Dockerfile.debian'),
};

/**
 * vxchaos/probe:<libc>-<hash of source and Dockerfile>: a changed probe gets a new tag, so a node never
 * runs a stale image that `imagePullPolicy: Never` would otherwise keep.
 */
export function probeImage(libc: Libc): string {
  const h = createHash('sha256');
  h.update(readFileSync(join(PROBE_CONTEXT, 'vxprobe.c')));
  h.update(readFileSync(PROBE_DOCKERFILES[libc]));
  return `vxchaos/probe:${libc}-${h.digest('hex').slice(0, 12)}`;
}

export const NODE_LOCAL_DNS_IP = NODE_LOCAL_DNS_ADDRESS;

/** Pods run in the topology's service namespace so the resolv.conf search list matches the netns provider's. */
export const POD_NAMESPACE = 'default';

/** An idle PID 1 that exits at once on SIGTERM (busybox and coreutils both have sleep; neither needs infinity). */
const IDLE = ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"];

function labels(runId: string, extra: Record<string, string>): Record<string, string> {
  return { 'app.kubernetes.io/managed-by': 'vxchaos', [RUN_LABEL]: runId, ...extra };
}

export interface DnsSettings {
  dnsPolicy: 'ClusterFirst' | 'None';
  dnsConfig?: { nameservers?: string[]; searches?: string[]; options?: { name: string; value?: string }[] };
}

/**
 * resolv.conf the way a workload owner applies each mitigation on Kubernetes: resolver options through
 * dnsConfig (kubelet merges them into the ClusterFirst resolv.conf), NodeLocal DNSCache through its
 * link-local address. Other mitigations act on nodes, not on the pod's resolver.
 */
export function clientDnsSettings(topology: Topology, mitigation = 'none'): DnsSettings {
  const option = (name: string) => ({ dnsPolicy: 'ClusterFirst' as const, dnsConfig: { options: [{ name }] } });
  switch (mitigation) {
    case 'single-request':
    case 'single-request-reopen':
    case 'use-vc':
      return option(mitigation);
    case 'nodelocaldns': {
      const d = topology.dns.domain;
      return {
        dnsPolicy: 'None',
        dnsConfig: {
          nameservers: [NODE_LOCAL_DNS_IP],
          searches: [`${POD_NAMESPACE}.svc.${d}`, `svc.${d}`, d],
          options: [{ name: 'ndots', value: '5' }],
        },
      };
    }
    default:
      return { dnsPolicy: 'ClusterFirst' };
  }
}

export function clientPodName(libc: Libc): string {
  return `vxchaos-client-${libc}`;
}

export function clientPodManifest(topology: Topology, libc: Libc, opts: { runId: string; image?: string; mitigation?: string }): Record<string, unknown> {
  const dns = clientDnsSettings(topology, opts.mitigation);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: clientPodName(libc),
      namespace: POD_NAMESPACE,
      labels: labels(opts.runId, { app: 'vxchaos-client', 'vxchaos.io/role': 'client', 'vxchaos.io/libc': libc }),
    },
    spec: {
      nodeSelector: { [NODE_LABEL]: topology.clients.node },
      terminationGracePeriodSeconds: 1,
      ...dns,
      containers: [{ name: 'probe', image: opts.image ?? probeImage(libc), imagePullPolicy: 'Never', command: IDLE }],
    },
  };
}

export function serverPodName(service: string, node: string): string {
  return `${service}-${node}`;
}

type Service = Topology['services'][number];

/** One endpoint per listed node, a plain TCP listener: the connect workload needs a SYN-ACK, nothing more. */
export function serverPodManifest(service: Service, node: string, opts: { runId: string; image?: string }): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: serverPodName(service.name, node),
      namespace: service.namespace,
      labels: labels(opts.runId, { app: service.name, 'vxchaos.io/role': 'server' }),
    },
    spec: {
      nodeSelector: { [NODE_LABEL]: node },
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'server',
          image: opts.image ?? probeImage('musl'),
          imagePullPolicy: 'Never',
          command: ['httpd', '-f', '-p', String(service.targetPort), '-h', '/tmp'],
          ports: [{ containerPort: service.targetPort, protocol: 'TCP' }],
          readinessProbe: { tcpSocket: { port: service.targetPort }, periodSeconds: 1 },
        },
      ],
    },
  };
}

/** The topology's Service at its fixed ClusterIP: the name the resolve workload looks up. */
export function serviceManifest(service: Service, runId: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: service.name, namespace: service.namespace, labels: labels(runId, {}) },
    spec: {
      type: 'ClusterIP',
      clusterIP: service.clusterIP,
      selector: { app: service.name },
      ports: [{ name: `${service.protocol.toLowerCase()}-${service.port}`, port: service.port, targetPort: service.targetPort, protocol: service.protocol }],
    },
  };
}

export function toYamlStream(objects: readonly Record<string, unknown>[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}

/**
 * The NodeLocal DNSCache template's placeholders as the Kubernetes docs fill them for kube-proxy in iptables
 * mode. node-cache fills __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ itself at start (from
 * the kube-dns-upstream Service and /etc/resolv.conf), so those stay.
 */
export function nodeLocalDnsSubstitutions(topology: Topology): readonly (readonly [placeholder: string, value: string])[] {
  return [
    ['__PILLAR__LOCAL__DNS__', NODE_LOCAL_DNS_IP],
    ['__PILLAR__DNS__DOMAIN__', topology.dns.domain],
    ['__PILLAR__DNS__SERVER__', topology.dns.clusterIP],
  ];
}

/** The NodeLocal DNSCache template (the verified upstream text) with nodeLocalDnsSubstitutions applied. Pure. */
export function nodeLocalDnsManifest(topology: Topology, template: string): string {
  let text = template;
  for (const [placeholder, value] of nodeLocalDnsSubstitutions(topology)) text = text.replaceAll(placeholder, value);
  return text;
}
