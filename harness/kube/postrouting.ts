/** kube-proxy's KUBE-POSTROUTING chain as iptables-restore text: shared by the netns kube-proxy and faults. */
export type KubeProxyForm = 'historic' | 'fixed';

/**
 * KUBE-POSTROUTING in its two historic shapes. `historic` (before kubernetes PR 92035) masquerades every
 * packet carrying mark 0x4000 — including the outer VXLAN packet of a marked inner one, which is the double
 * SNAT of seed 001. `fixed` returns early for unmarked packets and clears the mark before masquerading.
 */
export function kubePostrouting(form: KubeProxyForm, randomFully = true): string[] {
  const masq = `-j MASQUERADE${randomFully ? ' --random-fully' : ''}`;
  if (form === 'historic') {
    return [`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 ${masq}`];
  }
  return [
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" ${masq}`,
  ];
}

/** Only KUBE-POSTROUTING, for `iptables-restore --noflush`: how a mitigation swaps the form in place. */
export function postroutingOnly(form: KubeProxyForm, randomFully = true): string {
  return ['*nat', ':KUBE-POSTROUTING - [0:0]', ...kubePostrouting(form, randomFully), 'COMMIT', ''].join('\n');
}

interface Execer {
  exec(argv: readonly string[], opts?: { input?: string }): Promise<{ stdout: string }>;
}

/** The chain's rules as `-A …` lines (iptables -S), to put back exactly what was there. */
export async function saveChain(node: Execer, chain = 'KUBE-POSTROUTING'): Promise<string[]> {
  const r = await node.exec(['iptables', '-w', '5', '-t', 'nat', '-S', chain]);
  return r.stdout.split('\n').filter((l) => l.startsWith('-A '));
}

/** Replaces the chain's rules in one iptables-restore transaction (--noflush keeps every other chain). */
export async function restoreChain(node: Execer, rules: readonly string[], chain = 'KUBE-POSTROUTING'): Promise<void> {
  await node.exec(['iptables-restore', '-w', '5', '--noflush'], { input: ['*nat', `:${chain} - [0:0]`, ...rules, 'COMMIT', ''].join('\n') });
}
