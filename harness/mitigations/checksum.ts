import { VxError } from '../errors.ts';
import { postroutingOnly, restoreChain, saveChain } from '../kube/postrouting.ts';
import { noParams, type Requirement } from '../faults/fault.ts';
import type { ClusterNode } from '../providers/provider.ts';
import type { AppliedMitigation, Mitigation, MitigationContext } from './mitigation.ts';

const OWNS_CHAINS: Requirement[] = [{ capability: 'ownsKubeProxyChains', because: 'rewrites KUBE-POSTROUTING, which a real kube-proxy rewrites back on every sync' }];

/** Rewrites KUBE-POSTROUTING on every node; each node's previous rules go back on undo. */
async function withPostrouting(ctx: MitigationContext, text: string, what: string): Promise<AppliedMitigation> {
  for (const node of ctx.cluster.nodes) {
    const rules = await saveChain(node);
    await node.exec(['iptables-restore', '-w', '5', '--noflush'], { input: text });
    ctx.undo.push(`${node.name}: KUBE-POSTROUTING as found`, () => restoreChain(node, rules));
  }
  ctx.log(`KUBE-POSTROUTING on every node: ${what}`);
  return { counters: {} };
}

async function txChecksum(node: ClusterNode): Promise<string> {
  const out = (await node.exec(['ethtool', '-k', 'flannel.1'])).stdout;
  const m = /^\s*tx-checksum-ip-generic: (on|off)/m.exec(out);
  if (!m) throw new VxError('E_MITIGATION', `${node.name}: ethtool -k flannel.1 has no tx-checksum-ip-generic`);
  return m[1]!;
}

/** flannel's documented workaround (troubleshooting.md#nat; kops, kURL, usernetes ship it via udev). */
export const ethtoolTxOff: Mitigation = {
  name: 'ethtool-tx-off',
  description: 'ethtool -K flannel.1 tx-checksum-ip-generic off on every node (flannel troubleshooting, seed 001)',
  params: noParams,
  async apply(ctx) {
    for (const n of ctx.cluster.nodes) {
      const found = await txChecksum(n);
      await n.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', 'off']);
      ctx.undo.push(`${n.name}: flannel.1 tx-checksum-ip-generic ${found}`, () => n.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', found]));
    }
    return { counters: {} };
  },
};

/** kubernetes PR 92035 (v1.19, cherry-picked to 1.16–1.18): unmark packets before masquerading them. */
export const kubeProxyFix: Mitigation = {
  name: 'kube-proxy-fix',
  description: 'KUBE-POSTROUTING returns for unmarked packets and clears 0x4000 before MASQUERADE (kubernetes PR 92035)',
  params: noParams,
  requires: () => OWNS_CHAINS,
  apply: (ctx) => withPostrouting(ctx, postroutingOnly('fixed', true), 'fixed form (PR 92035)'),
};

export const noRandomFully: Mitigation = {
  name: 'no-random-fully',
  description: 'historic KUBE-POSTROUTING without --random-fully (kube-proxy before random-fully support)',
  params: noParams,
  requires: () => OWNS_CHAINS,
  apply: (ctx) => withPostrouting(ctx, postroutingOnly('historic', false), 'historic form without --random-fully'),
};
