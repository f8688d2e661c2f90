import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { VxError } from '../../errors.ts';
import { DEFAULT_FLANNEL_VERSION, FLANNEL_VERSIONS, flannelNetConf, flannelPin, renderFlannelManifest } from './flannel.ts';
import { NODE_LOCAL_DNS_IP, nodeLocalDnsManifest, nodeLocalDnsSubstitutions } from './manifests.ts';
import { FLANNEL_MANIFEST_PINS } from './pins.ts';

/**
 * The transformations applied to the downloaded manifests, on small manifests written here with only the
 * fields that matter. The real upstream files are never in this repository; they are fetched and checked
 * by sha256 at run time (fetch-pinned.ts).
 */
type Obj = Record<string, any>;

function objects(text: string): Obj[] {
  return parseAllDocuments(text).flatMap((d) => {
    if (!('errors' in d)) throw new Error('empty stream');
    expect(d.errors).toEqual([]);
    const js = d.toJS() as Obj | null;
    return js ? [js] : [];
  });
}

const byKind = (objs: Obj[], kind: string, name?: string) => objs.find((o) => o.kind === kind && (!name || o.metadata?.name === name));

const threeNode = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));
const custom = loadTopology('t.yaml', 'name: t\nnodes: [{name: a}]\nclients: {node: a}\ndns: {replicas: [a]}\npodCIDR: 10.200.0.0/16\nvxlan: {vni: 4096, port: 4789}\n');

/** A kube-flannel manifest cut down to what the render touches and what must survive it. */
const FLANNEL = `---
kind: Namespace
apiVersion: v1
metadata:
  name: kube-flannel
---
kind: ConfigMap
apiVersion: v1
metadata:
  name: kube-flannel-cfg
  namespace: kube-flannel
data:
  cni-conf.json: |
    {"name": "cbr0", "plugins": [{"type": "flannel", "delegate": {"isDefaultGateway": true}}]}
  net-conf.json: |
    {
      "Network": "10.244.0.0/16",
      "EnableNFTables": false,
      "Backend": {
        "Type": "vxlan",
        "DirectRouting": false
      }
    }
---
kind: DaemonSet
apiVersion: apps/v1
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
spec:
  template:
    metadata:
      labels:
        app: flannel
    spec:
      hostNetwork: true
      containers:
      - name: kube-flannel
        image: example.invalid/flannel:v0.0.0
        args: ["--ip-masq", "--kube-subnet-mgr"]
`;

describe('renderFlannelManifest (pure: text in, text out)', () => {
  const netConf = (text: string) => JSON.parse(byKind(objects(text), 'ConfigMap', 'kube-flannel-cfg')?.data['net-conf.json']);

  it('sets Network, VXLAN VNI and port from the topology and keeps the other net-conf keys', () => {
    expect(netConf(renderFlannelManifest(custom, FLANNEL))).toEqual({
      Network: '10.200.0.0/16',
      EnableNFTables: false,
      Backend: { Type: 'vxlan', DirectRouting: false, VNI: 4096, Port: 4789 },
    });
  });

  it('renders the shared topology as upstream ships it (10.244.0.0/16, VNI 1, port 8472)', () => {
    expect(flannelNetConf(threeNode)).toEqual({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1, Port: 8472 } });
    expect(netConf(renderFlannelManifest(threeNode, FLANNEL))).toMatchObject({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1, Port: 8472 } });
  });

  it('changes nothing else: same objects in the same order, DaemonSet and cni-conf.json untouched', () => {
    const before = objects(FLANNEL);
    const after = objects(renderFlannelManifest(custom, FLANNEL));
    expect(after.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Namespace/kube-flannel', 'ConfigMap/kube-flannel-cfg', 'DaemonSet/kube-flannel-ds']);
    expect(byKind(after, 'DaemonSet')).toEqual(byKind(before, 'DaemonSet'));
    expect(byKind(after, 'Namespace')).toEqual(byKind(before, 'Namespace'));
    expect(byKind(after, 'ConfigMap')?.data['cni-conf.json']).toBe(byKind(before, 'ConfigMap')?.data['cni-conf.json']);
  });

  it('is deterministic and idempotent, and leaves its input alone', () => {
    const input = `${FLANNEL}`;
    const once = renderFlannelManifest(custom, input);
    expect(renderFlannelManifest(custom, input)).toBe(once);
    expect(renderFlannelManifest(custom, once)).toBe(once);
    expect(input).toBe(FLANNEL);
    // one document marker per object, net-conf.json as a block literal
    expect(once.match(/^---$/gm)).toHaveLength(3);
    expect(once).toMatch(/^ {2}net-conf\.json: \|\n/m);
  });

  it('keeps a leading comment and still prints every document marker', () => {
    const out = renderFlannelManifest(custom, `# a header\n${FLANNEL}`);
    expect(out.startsWith('# a header\n---\n')).toBe(true);
    expect(objects(out)).toHaveLength(3);
  });

  it('refuses a manifest without exactly one kube-flannel-cfg ConfigMap, or one that does not parse', () => {
    const noConfig = FLANNEL.replace('name: kube-flannel-cfg', 'name: something-else');
    expect(() => renderFlannelManifest(custom, noConfig)).toThrow(/expected one ConfigMap kube-flannel-cfg, found 0/);
    const cfg = FLANNEL.slice(FLANNEL.indexOf('---\nkind: ConfigMap'), FLANNEL.indexOf('---\nkind: DaemonSet'));
    expect(() => renderFlannelManifest(custom, `${FLANNEL}${cfg}`)).toThrow(/found 2/);
    expect(() => renderFlannelManifest(custom, '---\nkind: [unclosed\n')).toThrow(VxError);
    expect(() => renderFlannelManifest(custom, '')).toThrow(/found 0|empty/);
  });
});

describe('flannel versions', () => {
  it('resolves each pinned version, with or without the v', () => {
    expect(flannelPin()).toBe(FLANNEL_MANIFEST_PINS[DEFAULT_FLANNEL_VERSION]);
    expect(flannelPin('0.24.0')).toBe(FLANNEL_MANIFEST_PINS['v0.24.0']);
    for (const f of FLANNEL_VERSIONS) expect(flannelPin(f.version).url).toContain(`/${f.version}/`);
  });

  it('refuses a version without a pinned manifest, naming the pinned ones', () => {
    expect(() => flannelPin('v0.1.0')).toThrow(/no pinned kube-flannel manifest for "v0\.1\.0"; pinned: v0\.28\.9, v0\.26\.7, v0\.24\.0/);
  });
});

/** A NodeLocal DNSCache template cut down to where its placeholders sit. */
const NODE_LOCAL_DNS = `# a template
apiVersion: v1
kind: ConfigMap
metadata:
  name: node-local-dns
  namespace: kube-system
data:
  Corefile: |
    __PILLAR__DNS__DOMAIN__:53 {
        bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
        forward . __PILLAR__CLUSTER__DNS__ {
                force_tcp
        }
        health __PILLAR__LOCAL__DNS__:8080
        }
    .:53 {
        bind __PILLAR__LOCAL__DNS__ __PILLAR__DNS__SERVER__
        forward . __PILLAR__UPSTREAM__SERVERS__
        }
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-local-dns
  namespace: kube-system
spec:
  template:
    spec:
      hostNetwork: true
      containers:
      - name: node-cache
        image: example.invalid/node-cache:0.0.0
        args: [ "-localip", "__PILLAR__LOCAL__DNS__,__PILLAR__DNS__SERVER__", "-conf", "/etc/Corefile" ]
        livenessProbe:
          httpGet:
            host: __PILLAR__LOCAL__DNS__
            path: /health
            port: 8080
`;

describe('nodeLocalDnsManifest (pure: text in, text out)', () => {
  const rendered = nodeLocalDnsManifest(threeNode, NODE_LOCAL_DNS);
  const objs = objects(rendered);
  const ds = byKind(objs, 'DaemonSet', 'node-local-dns');
  const corefile: string = byKind(objs, 'ConfigMap', 'node-local-dns')?.data.Corefile;

  it('fills the placeholders the Kubernetes docs fill for kube-proxy in iptables mode', () => {
    expect(NODE_LOCAL_DNS_IP).toBe('169.254.20.10');
    expect(nodeLocalDnsSubstitutions(threeNode)).toEqual([
      ['__PILLAR__LOCAL__DNS__', '169.254.20.10'],
      ['__PILLAR__DNS__DOMAIN__', 'cluster.local'],
      ['__PILLAR__DNS__SERVER__', '10.96.0.10'],
    ]);
  });

  it('listens on 169.254.20.10 and the cluster DNS address, for the topology domain', () => {
    const args: string[] = ds?.spec.template.spec.containers[0].args;
    expect(args[args.indexOf('-localip') + 1]).toBe('169.254.20.10,10.96.0.10');
    expect(ds?.spec.template.spec.containers[0].livenessProbe.httpGet.host).toBe('169.254.20.10');
    expect(corefile).toMatch(/^cluster\.local:53 \{/);
    expect(corefile).toContain('bind 169.254.20.10 10.96.0.10');
    expect(corefile).toContain('health 169.254.20.10:8080');
  });

  it('leaves node-cache its own placeholders and changes nothing else', () => {
    expect(corefile).toMatch(/forward \. __PILLAR__CLUSTER__DNS__ \{\s*force_tcp/);
    expect(corefile).toContain('forward . __PILLAR__UPSTREAM__SERVERS__');
    expect(rendered).not.toMatch(/__PILLAR__(LOCAL__DNS|DNS__DOMAIN|DNS__SERVER)__/);
    // Undo the three substitutions: the template comes back byte for byte.
    const undone = rendered.replaceAll('169.254.20.10', '__PILLAR__LOCAL__DNS__').replaceAll('10.96.0.10', '__PILLAR__DNS__SERVER__').replaceAll('cluster.local:53', '__PILLAR__DNS__DOMAIN__:53');
    expect(undone).toBe(NODE_LOCAL_DNS);
  });

  it('follows the topology', () => {
    const t = loadTopology('t.yaml', 'name: t\nnodes: [{name: a}]\nclients: {node: a}\ndns: {replicas: [a], domain: example.internal, clusterIP: 10.100.0.10}\nserviceCIDR: 10.100.0.0/16\n');
    const out = nodeLocalDnsManifest(t, NODE_LOCAL_DNS);
    expect(out).toContain(`${t.dns.domain}:53 {`);
    expect(out).toContain(`bind 169.254.20.10 ${t.dns.clusterIP}`);
    expect(nodeLocalDnsManifest(t, 'no placeholders here\n')).toBe('no placeholders here\n');
  });
});
