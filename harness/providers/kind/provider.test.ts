import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { RunError } from '../../errors.ts';
import { recordingShell, type Shell } from '../../exec/shell.ts';
import { PinnedHashError, type KindManifests } from './fetch-pinned.ts';
import { FLANNEL_MANIFEST_PINS } from './pins.ts';
import { KIND_CAPABILITIES, KindPreflightError, KindProvider, neededImages } from './provider.ts';

const topology = loadTopology(join(CLUSTERS_DIR, 'three-node.yaml'));

/** Manifests without a download: what the provider would apply, as a marker that names its inputs. */
const manifests: KindManifests = {
  flannel: async (_t, version) => `# rendered kube-flannel ${version}\n`,
  nodeLocalDns: async () => '# rendered node-local-dns\n',
};

/** What the node binaries answer when checked, so a bring-up gets past the CNI step. */
const bridgeAnswers = (argv: readonly string[]) =>
  argv.includes('CNI_COMMAND=VERSION') ? '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}' : argv.includes('-h') ? 'usage: vxprobe' : '';

/** A recording shell whose calls matching `failOn` fail the way a real command does. */
function failingShell(failOn: (argv: readonly string[]) => boolean, reply: (argv: readonly string[]) => string = bridgeAnswers) {
  const rec = recordingShell(reply);
  const shell: Shell = async (argv, opts) => {
    const r = await rec(argv, opts);
    if (failOn(argv)) {
      if (opts?.nothrow) return { ...r, exitCode: 1, stderr: 'boom' };
      throw new RunError(argv, 1, '', 'boom');
    }
    return r;
  };
  return { shell, calls: rec.calls };
}

describe('preflight', () => {
  it('names every missing tool with how to install it', async () => {
    const p = new KindProvider({ which: (t) => (t === 'docker' ? '/usr/bin/docker' : undefined), shell: recordingShell() });
    const err = await p.preflight().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KindPreflightError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/kind is not on PATH; install kind v0\.32\.0: `go install sigs\.k8s\.io\/kind@v0\.32\.0`/);
    expect(msg).toMatch(/kubectl is not on PATH/);
    expect(msg).not.toMatch(/docker is not on PATH/);
  });

  it('fails when the Docker daemon does not answer', async () => {
    const { shell } = failingShell((argv) => argv[0] === 'docker' && argv[1] === 'info');
    const p = new KindProvider({ which: (t) => `/usr/bin/${t}`, shell });
    await expect(p.preflight()).rejects.toThrow(/Docker daemon is not reachable \(docker info: boom\)/);
  });

  it('refuses versions that are not pinned before anything runs', () => {
    expect(() => new KindProvider({ k8sVersion: '1.20' })).toThrow(/no pinned kind node image/);
    expect(() => new KindProvider({ flannelVersion: 'v0.7.1' })).toThrow(/no pinned kube-flannel manifest/);
  });
});

describe('a failed bring-up', () => {
  const failFlannel = (argv: readonly string[]) => argv.includes('daemonset/kube-flannel-ds');

  it('collects logs where the runner says (kind export logs, each node\'s tables, pod logs) and deletes the cluster', async () => {
    const { shell, calls } = failingShell(failFlannel);
    const p = new KindProvider({ shell, manifests, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run1', keep: false });
    await expect(p.up(topology, { runId: 'run1', clients: ['musl'], logsDir: '/r/run1/logs/bring-up' })).rejects.toThrow(/kube-flannel-ds/);
    const tail = calls.slice(calls.findIndex(failFlannel) + 1);
    expect(tail[0]).toEqual(['kind', 'export', 'logs', '/r/run1/logs/bring-up/kind', '--name', 'vxchaos-run1']);
    for (const node of ['vxchaos-run1-control-plane', 'vxchaos-run1-worker', 'vxchaos-run1-worker2']) {
      for (const argv of [['ip', 'neigh', 'show'], ['bridge', 'fdb', 'show'], ['iptables-save'], ['conntrack', '-S']]) expect(tail).toContainEqual(['docker', 'exec', node, ...argv]);
    }
    expect(tail.some((c) => c.includes('logs') && c.includes('k8s-app=kube-dns'))).toBe(true);
    expect(tail.some((c) => c.includes('logs') && c.includes('app=flannel'))).toBe(true);
    expect(tail.at(-1)).toEqual(['kind', 'delete', 'cluster', '--name', 'vxchaos-run1', '--kubeconfig', '/kc/vxchaos-run1.yaml']);
  });

  it('keeps the cluster when asked, logs still exported', async () => {
    const { shell, calls } = failingShell(failFlannel);
    const p = new KindProvider({ shell, manifests, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run2', keep: true });
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await expect(p.up(topology, { runId: 'run2', clients: [] })).rejects.toThrow(/kube-flannel-ds/);
    } finally {
      process.stderr.write = stderr;
    }
    expect(calls.some((c) => c[0] === 'kind' && c[1] === 'export')).toBe(true);
    expect(calls.some((c) => c[0] === 'kind' && c[1] === 'delete')).toBe(false);
  });

  it('reports the original failure even when the cleanup fails too', async () => {
    const { shell } = failingShell((argv) => failFlannel(argv) || (argv[0] === 'kind' && argv[1] === 'delete'));
    const p = new KindProvider({ shell, manifests, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run3', keep: false });
    const stderr = process.stderr.write;
    const said: string[] = [];
    process.stderr.write = ((s: string) => said.push(s) > 0) as typeof process.stderr.write;
    try {
      await expect(p.up(topology, { runId: 'run3', clients: [] })).rejects.toThrow(/kube-flannel-ds/);
    } finally {
      process.stderr.write = stderr;
    }
    expect(said.join('')).toMatch(/cleanup after the failed kind run also failed/);
  });

  it('creates the cluster from the generated config on stdin, with its own kubeconfig, retained for logs (an absent control-plane taint is fine)', async () => {
    const seen: { argv: readonly string[]; input?: string }[] = [];
    const rec = recordingShell();
    const shell: Shell = async (argv, opts) => {
      seen.push({ argv, ...(opts?.input !== undefined ? { input: opts.input } : {}) });
      if (argv.includes('taint')) return { stdout: '', stderr: 'error: taint "node-role.kubernetes.io/control-plane:NoSchedule" not found', exitCode: 1 };
      if (argv.includes('CNI_COMMAND=VERSION')) throw new RunError(argv, 1, '', 'stop here');
      return rec(argv, opts);
    };
    const p = new KindProvider({ shell, manifests, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run4' });
    await expect(p.up(topology, { runId: 'run4', clients: [] })).rejects.toThrow(/stop here/);
    const create = seen.find((s) => s.argv[0] === 'kind' && s.argv[1] === 'create');
    expect(create?.argv).toEqual(['kind', 'create', 'cluster', '--name', 'vxchaos-run4', '--config', '-', '--kubeconfig', '/kc/vxchaos-run4.yaml', '--retain']);
    expect(create?.input).toMatch(/^kind: Cluster\napiVersion: kind\.x-k8s\.io\/v1alpha4\n/);
  });

  it('applies the manifest the manifests source returns for the chosen flannel version', async () => {
    const seen: { argv: readonly string[]; input?: string }[] = [];
    const rec = recordingShell((argv) => (argv.includes('CNI_COMMAND=VERSION') ? 'supportedVersions' : argv.includes('-h') ? 'usage: vxprobe' : ''));
    const shell: Shell = async (argv, opts) => {
      seen.push({ argv, ...(opts?.input !== undefined ? { input: opts.input } : {}) });
      if (argv.includes('daemonset/kube-flannel-ds')) throw new RunError(argv, 1, '', 'stop here');
      return rec(argv, opts);
    };
    const p = new KindProvider({ shell, manifests, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run6', flannelVersion: 'v0.24.0' });
    await expect(p.up(topology, { runId: 'run6', clients: [] })).rejects.toThrow(/stop here/);
    const apply = seen.find((s) => s.argv.includes('apply') && s.input?.includes('kube-flannel'));
    expect(apply?.input).toBe('# rendered kube-flannel v0.24.0\n');
  });

  it('stops on a manifest that fails its sha256 before anything is built or created', async () => {
    const rec = recordingShell();
    const pin = FLANNEL_MANIFEST_PINS['v0.28.9']!;
    const bad: KindManifests = { ...manifests, flannel: async () => Promise.reject(new PinnedHashError(pin, 'f'.repeat(64))) };
    const steps: string[] = [];
    const p = new KindProvider({ shell: rec, manifests: bad, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run7' });
    const err = await p.up(topology, { runId: 'run7', clients: [], onStep: (s) => steps.push(s) }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`sha256 mismatch for ${pin.url}`);
    expect(steps).toEqual(['fetch and verify the pinned kube-flannel v0.28.9 manifest']);
    expect(rec.calls).toEqual([]);
  });

  it('fails when the control-plane taint cannot be removed for another reason', async () => {
    const rec = recordingShell();
    const shell: Shell = async (argv, opts) =>
      argv.includes('taint') ? { stdout: '', stderr: 'error: nodes "x" is forbidden', exitCode: 1 } : rec(argv, opts);
    const p = new KindProvider({ shell, manifests, kubeconfigDir: '/kc', writeFiles: false, reportDir: '/r/run5' });
    await expect(p.up(topology, { runId: 'run5', clients: [] })).rejects.toThrow(/forbidden/);
    expect(rec.calls.at(-1)).toEqual(['kind', 'delete', 'cluster', '--name', 'vxchaos-run5', '--kubeconfig', '/kc/vxchaos-run5.yaml']);
  });
});

describe('images and leftovers', () => {
  it('always builds the glibc image (it carries the CNI bridge plugin), musl when a client or server needs it', () => {
    expect(neededImages(topology, [])).toEqual(['musl', 'glibc']);
    const noServers = loadTopology('t.yaml', 'name: t\nnodes: [{name: a}]\nclients: {node: a}\ndns: {replicas: [a]}\n');
    expect(neededImages(noServers, [])).toEqual(['glibc']);
    expect(neededImages(noServers, ['musl'])).toEqual(['musl', 'glibc']);
  });

  it('lists and removes only vxchaos kind clusters, one by run id or all, with their CNI carrier containers', async () => {
    const reply = (argv: readonly string[]) => (argv[1] === 'get' ? 'kind\nvxchaos-run1\nother\nvxchaos-run2\n' : argv[1] === 'ps' ? 'abc123\n' : '');
    const all = recordingShell(reply);
    const p = new KindProvider({ shell: all, kubeconfigDir: '/nonexistent/kc', which: (t) => `/usr/bin/${t}` });
    expect(await p.list()).toEqual([
      { runId: 'run1', what: 'kind cluster vxchaos-run1' },
      { runId: 'run2', what: 'kind cluster vxchaos-run2' },
    ]);
    expect(await p.down()).toEqual({ removed: ['vxchaos-run1', 'vxchaos-run2'], problems: [] });
    expect(all.calls.filter((c) => c[1] === 'delete')).toEqual([
      ['kind', 'delete', 'cluster', '--name', 'vxchaos-run1'],
      ['kind', 'delete', 'cluster', '--name', 'vxchaos-run2'],
    ]);
    expect(all.calls).toContainEqual(['docker', 'ps', '-aq', '--filter', 'label=vxchaos.io/run']);
    expect(all.calls.at(-1)).toEqual(['docker', 'rm', '-f', 'abc123']);

    const one = recordingShell(reply);
    expect(await new KindProvider({ shell: one, kubeconfigDir: '/nonexistent/kc', which: (t) => `/usr/bin/${t}` }).down('run2')).toEqual({ removed: ['vxchaos-run2'], problems: [] });
    expect(one.calls.filter((c) => c[1] === 'delete')).toEqual([['kind', 'delete', 'cluster', '--name', 'vxchaos-run2']]);
    expect(one.calls).toContainEqual(['docker', 'ps', '-aq', '--filter', 'label=vxchaos.io/run=vxchaos-run2']);
    // a run already gone is not a problem: this is also the teardown after the cluster's own down()
    expect(await new KindProvider({ shell: recordingShell(reply), kubeconfigDir: '/nonexistent/kc', which: (t) => `/usr/bin/${t}` }).down('run9')).toEqual({ removed: [], problems: [] });
    // no kind on this machine: nothing to list or remove, and no command tried
    const none = recordingShell(reply);
    const without = new KindProvider({ shell: none, which: () => undefined });
    expect(await without.list()).toEqual([]);
    expect(await without.down()).toEqual({ removed: [], problems: [] });
    expect(none.calls).toEqual([]);
  });
});

describe('capabilities', () => {
  it('real components, KUBE-POSTROUTING not the harness\'s, every forward policy, private node files, upstream names served, one cluster a run', () => {
    expect(new KindProvider().capabilities).toBe(KIND_CAPABILITIES);
    expect(KIND_CAPABILITIES).toEqual({
      symptomsGuaranteed: false,
      ownsKubeProxyChains: false,
      forwardPolicies: ['sequential', 'random', 'health-checked'],
      privateNodeFiles: true,
      servesUpstreamNames: true,
      clustersAtOnce: 1,
    });
  });
});

describe('collectLogs writes files, never the kubeconfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vxchaos-kind-logs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes each node\'s tables and the pod logs with the command that made them, and says what it wrote', async () => {
    const reportDir = join(dir, 'run8');
    const neigh = '10.244.2.0 dev flannel.1 lladdr 0a:00:00:00:00:03 PERMANENT\n';
    // a bring-up that stops at flannel: the run failed, its logs are collected (--keep: the cluster stays)
    const stop = failingShell((argv) => argv.includes('daemonset/kube-flannel-ds'), (argv) => (argv.includes('neigh') ? neigh : bridgeAnswers(argv)));
    const p2 = new KindProvider({ shell: stop.shell, manifests, kubeconfigDir: join(dir, 'kc'), reportDir, writeFiles: true, keep: true });
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      await expect(p2.up(topology, { runId: 'run8', clients: [] })).rejects.toThrow(/kube-flannel-ds/);
    } finally {
      process.stderr.write = stderr;
    }
    const logs = join(reportDir, 'kind-logs');
    expect(readFileSync(join(logs, 'nodes', 'node-3', 'ip-neigh.txt'), 'utf8')).toBe(`$ docker exec vxchaos-run8-worker2 ip neigh show\n# exit 0\n${neigh}`);
    expect(readdirSync(join(logs, 'nodes', 'node-1')).sort()).toEqual(['bridge-fdb.txt', 'conntrack-S.txt', 'ip-neigh.txt', 'iptables-save.txt']);
    expect(readdirSync(join(logs, 'pods')).sort()).toEqual(['coredns.log', 'kube-flannel.log', 'pods.txt', 'upstream-dns.log']);
    // the kubeconfig lives outside the report directory, which CI uploads
    const files = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)]));
    expect(files(reportDir).filter((f) => /kubeconfig|\.kube/.test(f))).toEqual([]);
    expect(existsSync(join(dir, 'kc'))).toBe(true);
  });
});
