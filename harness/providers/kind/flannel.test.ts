import { describe, expect, it } from 'vitest';
import { recordingShell } from '../../exec/shell.ts';
import { KindWaitError, waitFor, type KindContext, type KNode } from './context.ts';
import { BACKEND_DATA, KindFlannel, leaseOf, PUBLIC_IP } from './flannel.ts';

const node = (name: string, topo: string, mac?: string): KNode => ({
  metadata: {
    name,
    labels: { 'vxchaos.io/node': topo },
    annotations: mac ? { [BACKEND_DATA]: JSON.stringify({ VNI: 1, VtepMAC: mac }), [PUBLIC_IP]: `172.18.0.${name.length}` } : {},
  },
  spec: { podCIDR: '10.244.1.0/24' },
  status: {},
});

const containers = new Map([
  ['node-1', 'c-control-plane'],
  ['node-2', 'c-worker'],
  ['node-3', 'c-worker2'],
]);

function ctxWith(reply: (argv: readonly string[]) => string) {
  const shell = recordingShell(reply);
  const ctx: KindContext = { shell, cluster: 'c', kubeconfig: '/k', podExec: async () => ({ stdout: '', stderr: '', exitCode: 0 }) };
  return { ctx, calls: shell.calls };
}

describe('flannel leases from node annotations', () => {
  it('reads VtepMAC, public IP and subnet as flanneld published them', () => {
    expect(leaseOf(node('c-worker2', 'node-3', 'aa:bb:cc:00:11:22'))).toEqual({ node: 'node-3', publicIP: '172.18.0.9', subnet: '10.244.1.0/24', vtepMAC: 'aa:bb:cc:00:11:22' });
  });

  it('has no lease before flanneld wrote it, or when backend-data is not JSON', () => {
    expect(leaseOf(node('c-worker', 'node-2'))).toBeUndefined();
    const broken = node('c-worker', 'node-2', 'x');
    broken.metadata.annotations![BACKEND_DATA] = '{not json';
    expect(leaseOf(broken)).toBeUndefined();
  });

  it('lists the leases of all nodes through kubectl', async () => {
    const { ctx, calls } = ctxWith(() => JSON.stringify({ items: [node('c-control-plane', 'node-1', '0a:00:00:00:00:01'), node('c-worker', 'node-2')] }));
    const leases = await new KindFlannel(ctx, containers).leases();
    expect(leases.map((l) => l.node)).toEqual(['node-1']);
    expect(calls).toEqual([['kubectl', '--kubeconfig', '/k', '--context', 'kind-c', 'get', 'nodes', '-o', 'json']]);
  });
});

describe('flannel control on kind', () => {
  it('freezes and thaws flanneld with SIGSTOP / SIGCONT in the node containers', async () => {
    const { ctx, calls } = ctxWith(() => '');
    const f = new KindFlannel(ctx, containers);
    await f.freeze(['node-1', 'node-2']);
    await f.thaw(['node-2']);
    expect(calls).toEqual([
      ['docker', 'exec', 'c-control-plane', 'pkill', '-STOP', '-x', 'flanneld'],
      ['docker', 'exec', 'c-worker', 'pkill', '-STOP', '-x', 'flanneld'],
      ['docker', 'exec', 'c-worker', 'pkill', '-CONT', '-x', 'flanneld'],
    ]);
    await expect(f.freeze(['node-9'])).rejects.toThrow(/unknown node "node-9"/);
  });

  it('restarts by deleting the node\'s kube-flannel pod and waiting for a new, Ready one and its lease', async () => {
    let deleted = false;
    const pod = (uid: string, ready: boolean) => ({
      metadata: { name: `kube-flannel-ds-${uid}`, namespace: 'kube-flannel', uid },
      spec: { nodeName: 'c-worker2', containers: [] },
      status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    });
    let polls = 0;
    let leaseReads = 0;
    const { ctx, calls } = ctxWith((argv) => {
      if (argv.includes('delete')) deleted = true;
      if (argv.includes('app=flannel')) return JSON.stringify({ items: [deleted ? pod('new', ++polls > 1) : pod('old', true)] });
      // flanneld v0.24.0 republishes its lease a moment after the pod is Ready: two reads still see the old MAC
      if (argv.includes('nodes')) return JSON.stringify({ items: [node('c-worker2', 'node-3', ++leaseReads > 2 ? '0a:00:00:00:00:33' : '0a:00:00:00:00:03')] });
      if (argv.includes('/sys/class/net/flannel.1/address')) return '0A:00:00:00:00:33\n';
      return '';
    });
    await new KindFlannel(ctx, containers).restart('node-3');
    const k = (...a: string[]) => ['kubectl', '--kubeconfig', '/k', '--context', 'kind-c', ...a];
    expect(calls[0]).toEqual(k('-n', 'kube-flannel', 'get', 'pods', '-l', 'app=flannel', '--field-selector', 'spec.nodeName=c-worker2', '-o', 'json'));
    expect(calls[1]).toEqual(k('-n', 'kube-flannel', 'delete', 'pod', 'kube-flannel-ds-old', '--wait=true', '--timeout=90s'));
    // polled until the new pod was Ready, then until the lease carried flannel.1's new MAC
    expect(polls).toBe(2);
    expect(leaseReads).toBe(3);
    expect(calls.at(-1)).toEqual(['docker', 'exec', 'c-worker2', 'cat', '/sys/class/net/flannel.1/address']);
  });
});

describe('waitFor', () => {
  it('retries until the check passes', async () => {
    let n = 0;
    await expect(waitFor('three tries', async () => (++n < 3 ? Promise.reject(new Error('not yet')) : n), { minIntervalMs: 1 })).resolves.toBe(3);
  });

  it('gives up after its time bound, naming what it waited for and the last reason', async () => {
    const err = await waitFor('flannel leases', async () => Promise.reject(new Error('no lease yet for node-3')), { timeoutMs: 50, minIntervalMs: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KindWaitError);
    expect((err as Error).message).toMatch(/waiting for flannel leases; last check: no lease yet for node-3/);
  });
});
