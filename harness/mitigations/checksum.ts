import { postroutingOnly, restoreChain, saveChain } from '../kube/postrouting.ts';
import type { ClusterNode } from '../providers/provider.ts';
import type { AppliedMitigation, Mitigation, MitigationContext } from './mitigation.ts';

/** Rewrites KUBE-POSTROUTING on every node and puts each node's previous rules back on revert. */
async function withPostrouting(ctx: MitigationContext, text: string, what: string): Promise<AppliedMitigation> {
  const saved = new Map<ClusterNode, string[]>();
  for (const node of ctx.cluster.nodes) {
    saved.set(node, await saveChain(node));
    await node.exec(['iptables-restore', '-w', '5', '--noflush'], { input: text });
  }
  ctx.log(`KUBE-POSTROUTING on every node: ${what}`);
  return {
    counters: {},
    revert: async () => {
      for (const [node, rules] of saved) await restoreChain(node, rules);
    },
  };
}

/** flannel's documented workaround (troubleshooting.md#nat; kops, kURL, usernetes ship it via udev). */
export const ethtoolTxOff: Mitigation = {
  name: 'ethtool-tx-off',
  description: 'ethtool -K flannel.1 tx-checksum-ip-generic off on every node (flannel troubleshooting, seed 001)',
  async apply(ctx) {
    for (const n of ctx.cluster.nodes) await n.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', 'off']);
    return {
      counters: {},
      revert: async () => {
        for (const n of ctx.cluster.nodes) await n.exec(['ethtool', '-K', 'flannel.1', 'tx-checksum-ip-generic', 'on']);
      },
    };
  },
};

/** kubernetes PR 92035 (v1.19, cherry-picked to 1.16–1.18): unmark packets before masquerading them. */
export const kubeProxyFix: Mitigation = {
  name: 'kube-proxy-fix',
  description: 'KUBE-POSTROUTING returns for unmarked packets and clears 0x4000 before MASQUERADE (kubernetes PR 92035)',
  apply: (ctx) => withPostrouting(ctx, postroutingOnly('fixed', true), 'fixed form (PR 92035)'),
};

export const noRandomFully: Mitigation = {
  name: 'no-random-fully',
  description: 'historic KUBE-POSTROUTING without --random-fully (kube-proxy before random-fully support)',
  apply: (ctx) => withPostrouting(ctx, postroutingOnly('historic', false), 'historic form without --random-fully'),
};
