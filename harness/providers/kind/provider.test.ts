import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { RunError } from '../../errors.ts';
import { recordingShell, type Shell } from '../../exec/shell.ts';
import { PinnedHashError, type KindManifests } from './fetch-pinned.ts';
import { FLANNEL_MANIFEST_PINS } from './pins.ts';
import { downAllKind, KindPreflightError, KindProvider, neededImages } from './provider.ts';

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

  it('exports the kind logs into the report and deletes the cluster', async () => {
    const { shell, calls } = failingShell(failFlannel);
    const p = new KindProvider({ shell, manifests, writeFiles: false, reportDir: '/r/run1', keep: false });
    await expect(p.up(topology, { runId: 'run1', clients: ['musl'] })).rejects.toThrow(/kube-flannel-ds/);
    const tail = calls.slice(calls.findIndex(failFlannel) + 1);
    expect(tail).toEqual([
      ['kind', 'export', 'logs', '/r/run1/kind-logs', '--name', 'vxchaos-run1'],
      ['kind', 'delete', 'cluster', '--name', 'vxchaos-run1', '--kubeconfig', '/r/run1/kind/kubeconfig'],
    ]);
  });

  it('keeps the cluster when asked, logs still exported', async () => {
    const { shell, calls } = failingShell(failFlannel);
    const p = new KindProvider({ shell, manifests, writeFiles: false, reportDir: '/r/run2', keep: true });
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
    const p = new KindProvider({ shell, manifests, writeFiles: false, reportDir: '/r/run3', keep: false });
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
    const p = new KindProvider({ shell, manifests, writeFiles: false, reportDir: '/r/run4' });
    await expect(p.up(topology, { runId: 'run4', clients: [] })).rejects.toThrow(/stop here/);
    const create = seen.find((s) => s.argv[0] === 'kind' && s.argv[1] === 'create');
    expect(create?.argv).toEqual(['kind', 'create', 'cluster', '--name', 'vxchaos-run4', '--config', '-', '--kubeconfig', '/r/run4/kind/kubeconfig', '--retain']);
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
    const p = new KindProvider({ shell, manifests, writeFiles: false, reportDir: '/r/run6', flannelVersion: 'v0.24.0' });
    await expect(p.up(topology, { runId: 'run6', clients: [] })).rejects.toThrow(/stop here/);
    const apply = seen.find((s) => s.argv.includes('apply') && s.input?.includes('kube-flannel'));
    expect(apply?.input).toBe('# rendered kube-flannel v0.24.0\n');
  });

  it('stops on a manifest that fails its sha256 before anything is built or created', async () => {
    const rec = recordingShell();
    const pin = FLANNEL_MANIFEST_PINS['v0.28.9']!;
    const bad: KindManifests = { ...manifests, flannel: async () => Promise.reject(new PinnedHashError(pin, 'f'.repeat(64))) };
    const steps: string[] = [];
    const p = new KindProvider({ shell: rec, manifests: bad, writeFiles: false, reportDir: '/r/run7' });
    const err = await p.up(topology, { runId: 'run7', clients: [], onStep: (s) => steps.push(s) }).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`sha256 mismatch for ${pin.url}`);
    expect(steps).toEqual(['fetch and verify the pinned kube-flannel v0.28.9 manifest']);
    expect(rec.calls).toEqual([]);
  });

  it('fails when the control-plane taint cannot be removed for another reason', async () => {
    const rec = recordingShell();
    const shell: Shell = async (argv, opts) =>
      argv.includes('taint') ? { stdout: '', stderr: 'error: nodes "x" is forbidden', exitCode: 1 } : rec(argv, opts);
    const p = new KindProvider({ shell, manifests, writeFiles: false, reportDir: '/r/run5' });
    await expect(p.up(topology, { runId: 'run5', clients: [] })).rejects.toThrow(/forbidden/);
    expect(rec.calls.at(-1)).toEqual(['kind', 'delete', 'cluster', '--name', 'vxchaos-run5', '--kubeconfig', '/r/run5/kind/kubeconfig']);
  });
});

describe('images and leftovers', () => {
  it('always builds the glibc image (it carries the CNI bridge plugin), musl when a client or server needs it', () => {
    expect(neededImages(topology, [])).toEqual(['musl', 'glibc']);
    const noServers = loadTopology('t.yaml', 'name: t\nnodes: [{name: a}]\nclients: {node: a}\ndns: {replicas: [a]}\n');
    expect(neededImages(noServers, [])).toEqual(['glibc']);
    expect(neededImages(noServers, ['musl'])).toEqual(['musl', 'glibc']);
  });

  it('down --all deletes only the vxchaos kind clusters and the CNI carrier containers', async () => {
    const shell = recordingShell((argv) => (argv[1] === 'get' ? 'kind\nvxchaos-run1\nother\nvxchaos-run2\n' : argv[1] === 'ps' ? 'abc123\n' : ''));
    expect(await downAllKind(shell)).toEqual(['vxchaos-run1', 'vxchaos-run2']);
    expect(shell.calls.filter((c) => c[1] === 'delete')).toEqual([
      ['kind', 'delete', 'cluster', '--name', 'vxchaos-run1'],
      ['kind', 'delete', 'cluster', '--name', 'vxchaos-run2'],
    ]);
    expect(shell.calls.at(-1)).toEqual(['docker', 'rm', '-f', 'abc123']);
  });
});
