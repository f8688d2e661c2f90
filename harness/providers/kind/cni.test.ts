import { describe, expect, it } from 'vitest';
import { recordingShell } from '../../exec/shell.ts';
import { installNodeBinaries } from './cni.ts';
import type { KindContext } from './context.ts';

function ctxWith(reply: (argv: readonly string[]) => string) {
  const shell = recordingShell(reply);
  const ctx: KindContext = { shell, cluster: 'c', kubeconfig: '/k', podExec: async () => ({ stdout: '', stderr: '', exitCode: 0 }) };
  return { ctx, calls: shell.calls };
}

const answers = (argv: readonly string[]) => (argv.includes('CNI_COMMAND=VERSION') ? '{"supportedVersions":["0.3.1"]}' : argv.includes('-h') ? 'usage: vxprobe [-t threads]' : '');

describe('node binaries on kind nodes', () => {
  it('copies bridge and vxprobe out of the glibc probe image onto every node and runs each there once', async () => {
    const { ctx, calls } = ctxWith(answers);
    await installNodeBinaries(ctx, 'vxchaos/probe:glibc-x', ['c-control-plane', 'c-worker'], '/w');
    expect(calls).toEqual([
      ['docker', 'create', '--name', 'c-cni', '--label', 'vxchaos.io/run=c', 'vxchaos/probe:glibc-x'],
      ['docker', 'cp', 'c-cni:/usr/lib/cni/bridge', '/w/bridge'],
      ['docker', 'cp', 'c-cni:/usr/local/bin/vxprobe', '/w/vxprobe'],
      ['docker', 'rm', '-f', 'c-cni'],
      ['docker', 'cp', '/w/bridge', 'c-control-plane:/opt/cni/bin/bridge'],
      ['docker', 'exec', '-e', 'CNI_COMMAND=VERSION', 'c-control-plane', '/opt/cni/bin/bridge'],
      ['docker', 'cp', '/w/vxprobe', 'c-control-plane:/usr/local/bin/vxprobe'],
      ['docker', 'exec', 'c-control-plane', '/usr/local/bin/vxprobe', '-h'],
      ['docker', 'cp', '/w/bridge', 'c-worker:/opt/cni/bin/bridge'],
      ['docker', 'exec', '-e', 'CNI_COMMAND=VERSION', 'c-worker', '/opt/cni/bin/bridge'],
      ['docker', 'cp', '/w/vxprobe', 'c-worker:/usr/local/bin/vxprobe'],
      ['docker', 'exec', 'c-worker', '/usr/local/bin/vxprobe', '-h'],
    ]);
  });

  it('fails on a node where a copied binary does not run, and removes the carrier container anyway', async () => {
    const { ctx, calls } = ctxWith(() => 'exec format error');
    await expect(installNodeBinaries(ctx, 'img', ['c-control-plane'], '/w')).rejects.toThrow(/did not print "supportedVersions"/);
    expect(calls).toContainEqual(['docker', 'rm', '-f', 'c-cni']);
  });
});
