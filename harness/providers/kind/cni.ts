import { join } from 'node:path';
import { RunError } from '../../errors.ts';
import type { KindContext } from './context.ts';

/**
 * The kind node image keeps only host-local, loopback, ptp and portmap (kind#1340, flannel#1847), while
 * flannel's CNI plugin delegates pod interfaces to `bridge`. The glibc probe image carries Debian's
 * `bridge` (containernetworking-plugins, pinned by the image's Debian release); it is copied onto every
 * node before flannel starts, so kubelet finds it at the first pod sandbox.
 */
export const BRIDGE_IN_IMAGE = '/usr/lib/cni/bridge';
export const NODE_CNI_BIN = '/opt/cni/bin';
/** vxprobe for node → Service workloads (Cluster.nodeProbe): the glibc build, as the node is Debian. */
export const VXPROBE_IN_IMAGE = '/usr/local/bin/vxprobe';
export const NODE_VXPROBE = '/usr/local/bin/vxprobe';

export interface NodeBinary {
  /** Path in the glibc probe image. */
  from: string;
  /** Path on the kind node. */
  to: string;
  /** argv + env that must succeed on the node and print `expect`: the binary fits the node's libc. */
  check: { argv: string[]; env?: string[]; expect: string };
}

export const NODE_BINARIES: readonly NodeBinary[] = [
  { from: BRIDGE_IN_IMAGE, to: `${NODE_CNI_BIN}/bridge`, check: { argv: [`${NODE_CNI_BIN}/bridge`], env: ['CNI_COMMAND=VERSION'], expect: 'supportedVersions' } },
  { from: VXPROBE_IN_IMAGE, to: NODE_VXPROBE, check: { argv: [NODE_VXPROBE, '-h'], expect: 'usage: vxprobe' } },
];

/**
 * docker cp, not a DaemonSet: it needs no working kubelet, scheduler or image load yet, and the bridge
 * plugin must be there before flannel's first pod sandbox.
 */
export async function installNodeBinaries(ctx: KindContext, image: string, containers: readonly string[], workDir: string, binaries: readonly NodeBinary[] = NODE_BINARIES): Promise<void> {
  const carrier = `${ctx.cluster}-cni`;
  const local = (b: NodeBinary) => join(workDir, b.from.split('/').pop()!);
  // Labelled with the run, never with kind's own cluster label: kind lists its nodes by that label.
  await ctx.shell(['docker', 'create', '--name', carrier, '--label', `vxchaos.io/run=${ctx.cluster}`, image]);
  try {
    for (const b of binaries) await ctx.shell(['docker', 'cp', `${carrier}:${b.from}`, local(b)]);
  } finally {
    await ctx.shell(['docker', 'rm', '-f', carrier], { nothrow: true });
  }
  for (const node of containers) {
    for (const b of binaries) {
      await ctx.shell(['docker', 'cp', local(b), `${node}:${b.to}`]);
      // Run it once on the node: proves the binary's libc fits the node image before anything depends on it.
      const argv = ['docker', 'exec', ...(b.check.env ?? []).flatMap((e) => ['-e', e]), node, ...b.check.argv];
      const r = await ctx.shell(argv, { nothrow: true });
      if (r.exitCode !== 0 || !`${r.stdout}${r.stderr}`.includes(b.check.expect)) {
        throw new RunError(argv, r.exitCode, r.stdout, r.stderr, `did not print "${b.check.expect}"`);
      }
    }
  }
}
