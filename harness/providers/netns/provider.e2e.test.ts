import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsList, upThreeNode } from '../../e2e/helpers.ts';
import { isRoot } from '../../doctor.ts';
import { downAll, STATE_DIR } from './ledger.ts';
import { shell } from '../../exec/shell.ts';
import { runProbe } from '../../measure/probe.ts';
import { newRunId } from '../../runner.ts';
import type { Cluster } from '../provider.ts';


describe.skipIf(!isRoot())('netns provider on real namespaces (needs root)', () => {
  const runId = newRunId();
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await upThreeNode(runId, ['musl', 'glibc']);
  });
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('programs flannel.1 as flannel does: VNI 1, port 8472, nolearning, MTU 1450, PERMANENT peers', async () => {
    const n1 = cluster.node('node-1');
    const link = JSON.parse((await n1.exec(['ip', '-d', '-j', 'link', 'show', 'flannel.1'])).stdout)[0];
    expect(link.mtu).toBe(1450);
    expect(link.linkinfo.info_kind).toBe('vxlan');
    expect(link.linkinfo.info_data).toMatchObject({ id: 1, port: 8472, learning: false });
    const leases = await cluster.flannel.leases();
    const neigh = (await n1.exec(['ip', 'neigh', 'show', 'dev', 'flannel.1'])).stdout;
    for (const l of leases.filter((x) => x.node !== 'node-1')) {
      expect(neigh).toContain(`${l.subnet.split('/')[0]} lladdr ${l.vtepMAC} PERMANENT`);
    }
    const fdb = (await n1.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout;
    expect(fdb).toContain(`dst ${leases.find((l) => l.node === 'node-2')!.publicIP}`);
  });

  it('has kube-proxy chains for the DNS ClusterIP on every node', async () => {
    for (const n of cluster.nodes) {
      const nat = (await n.exec(['iptables-save', '-t', 'nat'])).stdout;
      expect(nat).toContain('-A KUBE-SERVICES -d 10.96.0.10/32 -p udp');
      expect(nat.match(/-j DNAT --to-destination 10\.244\.\d+\.\d+:53/g)?.length).toBe(6);
    }
  });

  it('resolves through the real musl and glibc resolvers: services, the search list, external names', async () => {
    const expected: Record<string, string> = {
      'web.default.svc.cluster.local': 'OK', // walks the search list first (ndots:5)
      web: 'OK', // short name through the search list
      'test.example.cn': 'OK', // forwarded to the upstream in the fabric
      'nope.default.svc.cluster.local.': 'EAI_NONAME',
    };
    for (const libc of ['musl', 'glibc'] as const) {
      const client = cluster.clients[libc]!;
      for (const [name, result] of Object.entries(expected)) {
        const out = await runProbe(client, { targets: [name], threads: 2, count: 10 });
        expect(out.libc).toBe(libc);
        expect(out.samples.map((s) => s.result), `${libc} ${name}`).toEqual(Array(10).fill(result));
      }
    }
    // CoreDNS semantics: AAAA of a v4 service is NODATA with the SOA, unknown names NXDOMAIN.
    const musl = cluster.clients.musl!;
    const aaaa = (await musl.exec(['dig', '@10.96.0.10', 'web.default.svc.cluster.local', 'AAAA'])).stdout;
    expect(aaaa).toMatch(/status: NOERROR/);
    expect(aaaa).toMatch(/SOA\s+ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\./);
    const nx = (await musl.exec(['dig', '@10.96.0.10', 'nope.default.svc.cluster.local'])).stdout;
    expect(nx).toMatch(/status: NXDOMAIN/);
  });

  it('is isolated: no vxchaos address or route in the root namespace, names carry the run id', async () => {
    const rootAddrs = (await shell(['ip', '-o', 'addr'])).stdout;
    expect(rootAddrs).not.toMatch(/172\.18\.0\.|10\.244\./);
    const list = await netnsList();
    expect(list).toContain(`vxc-${runId}-node-1`);
    expect(list).toContain(`vxc-${runId}-fabric`);
  });

  it('down removes every namespace, process and file of the run', async () => {
    await cluster.down();
    expect(await netnsList()).not.toContain(`vxc-${runId}-`);
    expect(existsSync(`${STATE_DIR}/${runId}`)).toBe(false);
    expect(existsSync(`/etc/netns/vxc-${runId}-node-1-musl`)).toBe(false);
    const ps = (await shell(['ps', '-eo', 'args'])).stdout;
    expect(ps).not.toContain(`/run/vxchaos/${runId}/`);
  });
});

describe.skipIf(!isRoot())('a run\'s clusters side by side (needs root)', () => {
  const runId = newRunId();
  afterAll(async () => {
    await downAll(undefined, runId);
  });

  it('live apart, each under <run>.<n>, and `down <run>` removes them all, processes included', async () => {
    const [a, b] = await Promise.all([upThreeNode(`${runId}.1`, ['musl']), upThreeNode(`${runId}.2`, ['musl'])]);
    // Two clusters with the same addresses in their own namespaces: each resolves through its own DNS.
    for (const c of [a!, b!]) {
      const r = await c.clients.musl!.exec(['dig', '+short', '@10.96.0.10', 'web.default.svc.cluster.local']);
      expect(r.stdout.trim()).toMatch(/^10\.96\./);
    }
    const list = await netnsList();
    expect(list).toContain(`vxc-${runId}.1-node-1`);
    expect(list).toContain(`vxc-${runId}.2-node-1`);
    const r = await downAll(undefined, runId);
    expect(r.problems).toEqual([]);
    expect(r.runs.sort()).toEqual([`${runId}.1`, `${runId}.2`]);
    expect(await netnsList()).not.toContain(`vxc-${runId}`);
    for (const lane of ['1', '2']) expect(existsSync(`${STATE_DIR}/${runId}.${lane}`)).toBe(false);
    const ps = (await shell(['ps', '-eo', 'args'])).stdout;
    expect(ps).not.toContain(`/run/vxchaos/${runId}.`);
  });
});
