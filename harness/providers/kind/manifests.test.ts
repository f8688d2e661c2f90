import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { BRIDGE_IN_IMAGE } from './cni.ts';
import { NODE_LABEL } from './config.ts';
import { corednsPatch } from './dns.ts';
import { clientDnsSettings, clientPodManifest, PROBE_DOCKERFILES, probeImage, serverPodManifest, serviceManifest } from './manifests.ts';

type Obj = Record<string, any>;

const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));

describe('client and server pods', () => {
  it('puts each libc client on the topology client node, from its probe image, never pulled', () => {
    for (const libc of ['musl', 'glibc'] as const) {
      const pod = clientPodManifest(topology, libc, { runId: 'r1' }) as Obj;
      expect(pod.metadata.name).toBe(`vxchaos-client-${libc}`);
      expect(pod.spec.nodeSelector).toEqual({ [NODE_LABEL]: 'node-1' });
      expect(pod.spec.containers[0]).toMatchObject({ image: probeImage(libc), imagePullPolicy: 'Never' });
      expect(pod.metadata.labels['vxchaos.io/run']).toBe('r1');
    }
  });

  it('gives each resolver mitigation its dnsConfig', () => {
    expect(clientDnsSettings(topology, 'none')).toEqual({ dnsPolicy: 'ClusterFirst' });
    for (const m of ['single-request', 'single-request-reopen', 'use-vc']) {
      expect(clientDnsSettings(topology, m)).toEqual({ dnsPolicy: 'ClusterFirst', dnsConfig: { options: [{ name: m }] } });
    }
    const local = clientDnsSettings(topology, 'nodelocaldns');
    expect(local.dnsPolicy).toBe('None');
    expect(local.dnsConfig?.nameservers).toEqual(['169.254.20.10']);
    expect(local.dnsConfig?.searches).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
    expect(clientDnsSettings(topology, 'neigh-resync')).toEqual({ dnsPolicy: 'ClusterFirst' });
    expect((clientPodManifest(topology, 'glibc', { runId: 'r', mitigation: 'use-vc' }) as Obj).spec.dnsConfig.options).toEqual([{ name: 'use-vc' }]);
  });

  it('serves the web Service from an endpoint pod on each listed node at its fixed ClusterIP', () => {
    const web = topology.services[0]!;
    const svc = serviceManifest(web, 'r') as Obj;
    expect(svc.spec).toMatchObject({ clusterIP: '10.96.100.10', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] });
    const pod = serverPodManifest(web, 'node-2', { runId: 'r' }) as Obj;
    expect(pod.metadata.labels.app).toBe('web');
    expect(pod.spec.nodeSelector).toEqual({ [NODE_LABEL]: 'node-2' });
    expect(pod.spec.containers[0].command).toEqual(['httpd', '-f', '-p', '8080', '-h', '/tmp']);
  });
});

describe('CoreDNS spread', () => {
  it('scales to the listed replicas, only on the listed nodes, one per node', () => {
    const p = corednsPatch(topology) as Obj;
    expect(p.spec.replicas).toBe(3);
    const affinity = p.spec.template.spec.affinity;
    expect(affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]).toEqual({
      key: NODE_LABEL,
      operator: 'In',
      values: ['node-1', 'node-2', 'node-3'],
    });
    expect(affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(p.spec.strategy.rollingUpdate.maxSurge).toBe(0);
  });
});

describe('probe images', () => {
  const alpine = readFileSync(PROBE_DOCKERFILES.musl, 'utf8');
  const debian = readFileSync(PROBE_DOCKERFILES.glibc, 'utf8');

  it('build vxprobe.c from the images/probe context into /usr/local/bin/vxprobe', () => {
    for (const d of [alpine, debian]) {
      expect(d).toMatch(/^COPY vxprobe\.c \./m);
      expect(d).toMatch(/^COPY --from=build \/src\/vxprobe \/usr\/local\/bin\/vxprobe$/m);
      expect(d).toMatch(/^FROM \$\{\w+\} AS build$/m);
    }
  });

  it('link musl statically on Alpine and glibc dynamically on Debian', () => {
    expect(alpine).toMatch(/^ARG ALPINE_IMAGE=alpine:3\.\d+$/m);
    expect(alpine).toMatch(/musl-dev/);
    expect(alpine).toMatch(/gcc [^\n]*-static[^\n]*vxprobe\.c/);
    expect(debian).toMatch(/^ARG DEBIAN_IMAGE=debian:\w+-slim$/m);
    expect(debian).toMatch(/gcc [^\n]*-pthread[^\n]*vxprobe\.c/);
    expect(debian).not.toMatch(/gcc [^\n]*-static/);
  });

  it('carry what the kind provider and the faults take from them (httpd, dig, the CNI bridge plugin)', () => {
    expect(alpine).toMatch(/apk add --no-cache busybox-extras bind-tools/);
    expect(debian).toMatch(/install -y --no-install-recommends bind9-dnsutils/);
    expect(debian).toContain(`COPY --from=build ${BRIDGE_IN_IMAGE} ${BRIDGE_IN_IMAGE}`);
  });

  it('are tagged by content, so a changed probe is a new image', () => {
    expect(probeImage('musl')).toMatch(/^vxchaos\/probe:musl-[0-9a-f]{12}$/);
    expect(probeImage('glibc')).not.toBe(probeImage('musl').replace('musl', 'glibc'));
  });
});
