import { randomBytes } from 'node:crypto';
import { VxError } from '../../errors.ts';
import type { Topology } from '../../config/topology.ts';
import type { FlannelControl, VtepLease } from '../provider.ts';
import { bridgeBatch, ipBatch } from './network.ts';
import type { NetnsNode } from './node.ts';

export const VXLAN_DEV = 'flannel.1';

/** A random unicast, locally administered MAC: what the kernel gives a new VXLAN device (eth_random_addr). */
export function randomVtepMAC(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The kernel state flannel's VXLAN backend keeps for one remote node: route, PERMANENT neighbour, FDB entry. */
export function peerCommands(lease: VtepLease): { ip: string[]; bridge: string[] } {
  const vtepIP = lease.subnet.split('/')[0]!;
  return {
    ip: [
      `route replace ${lease.subnet} via ${vtepIP} dev ${VXLAN_DEV} onlink`,
      `neigh replace ${vtepIP} lladdr ${lease.vtepMAC} dev ${VXLAN_DEV} nud permanent`,
    ],
    // netlink NeighSet as flannel does it: create or replace the entry for this MAC.
    bridge: [`fdb replace ${lease.vtepMAC} dev ${VXLAN_DEV} self permanent dst ${lease.publicIP}`],
  };
}

/**
 * flanneld reduced to what it programs (pkg/backend/vxlan): per node a flannel.1 VXLAN device (nolearning),
 * a VtepMAC lease, and on every peer one route + one PERMANENT neighbour + one FDB entry. Peers react to a
 * lease change unless frozen (a stopped or old flanneld, as in seed 002); frozen peers keep stale entries.
 */
export class FlannelEmulator implements FlannelControl {
  private readonly leaseMap = new Map<string, VtepLease>();
  private readonly frozen = new Set<string>();

  constructor(
    private readonly topo: Topology,
    private readonly nodes: readonly NetnsNode[],
  ) {}

  private node(name: string): NetnsNode {
    // The provider fills `nodes` as it creates them: look up at call time.
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new VxError('E_FLANNEL', `no node "${name}"`);
    return n;
  }

  async leases(): Promise<VtepLease[]> {
    return [...this.leaseMap.values()].map((l) => ({ ...l }));
  }

  /**
   * Bring up flanneld on every node at once. The VtepMACs are drawn first (random, locally administered, as
   * the kernel draws them), so each node gets its device and every peer's route and neighbour in one
   * `ip -batch`, then the FDB in one `bridge -batch`: two processes per node whatever the cluster size.
   */
  async startAll(): Promise<void> {
    for (const n of this.nodes) this.leaseMap.set(n.name, { node: n.name, publicIP: n.ip, subnet: n.podSubnet, vtepMAC: randomVtepMAC() });
    await Promise.all(
      this.nodes.map(async (n) => {
        const peers = [...this.leaseMap.values()].filter((l) => l.node !== n.name).map(peerCommands);
        await ipBatch(n.ctx, n.netns, [...this.deviceCommands(n, this.leaseMap.get(n.name)!.vtepMAC), ...peers.flatMap((c) => c.ip)]);
        if (peers.length) await bridgeBatch(n.ctx, n.netns, peers.flatMap((c) => c.bridge));
      }),
    );
  }

  /** flannel.1 as flanneld makes it (pkg/backend/vxlan): VNI, local underlay address, port, no learning. */
  private deviceCommands(node: NetnsNode, mac?: string): string[] {
    const vtepIP = node.podSubnet.split('/')[0]!;
    return [
      `link add ${VXLAN_DEV}${mac ? ` address ${mac}` : ''} type vxlan id ${this.topo.vxlan.vni} local ${node.ip} dev eth0 dstport ${this.topo.vxlan.port} nolearning`,
      `link set ${VXLAN_DEV} mtu ${this.topo.mtu}`,
      `addr add ${vtepIP}/32 dev ${VXLAN_DEV}`,
      `link set ${VXLAN_DEV} up`,
    ];
  }

  async restart(name: string): Promise<void> {
    const node = this.node(name);
    await this.ensureDevice(node);
    await this.programPeers(node);
    // The new lease reaches every peer whose flanneld is running.
    await Promise.all(this.nodes.filter((p) => p.name !== name && !this.frozen.has(p.name)).map((p) => this.program(p, [this.leaseMap.get(name)!])));
  }

  async freeze(nodes: readonly string[]): Promise<void> {
    for (const n of nodes) this.frozen.add(this.node(n).name);
  }

  /** A resumed flanneld relists the leases and programs every peer again. */
  async thaw(nodes: readonly string[]): Promise<void> {
    for (const n of nodes) {
      if (!this.frozen.delete(n)) continue;
      await this.programPeers(this.node(n));
    }
  }

  /** Creates flannel.1 if it is missing (a restart after the device was deleted gets a new random MAC). */
  private async ensureDevice(node: NetnsNode): Promise<void> {
    const show = await node.ctx.host.run(['ip', '-j', '-n', node.netns, 'link', 'show', VXLAN_DEV], { nothrow: true });
    if (show.exitCode !== 0) return this.createDevice(node);
    this.setLease(node, show.stdout);
  }

  /** flannel.1 with a kernel-chosen MAC, read back in the same `ip -batch` process. */
  private async createDevice(node: NetnsNode): Promise<void> {
    this.setLease(node, await ipBatch(node.ctx, node.netns, [...this.deviceCommands(node), `link show ${VXLAN_DEV}`], { json: true }));
  }

  private setLease(node: NetnsNode, linkJson: string): void {
    // `ip -j` prints one JSON array per command that shows something: the last one is the link.
    const last = linkJson.trim().split('\n').filter((l) => l.startsWith('[')).at(-1) ?? '[]';
    const mac = (JSON.parse(last) as { address?: string }[])[0]?.address;
    if (!mac) throw new VxError('E_FLANNEL', `${node.name}: ${VXLAN_DEV} has no MAC`);
    this.leaseMap.set(node.name, { node: node.name, publicIP: node.ip, subnet: node.podSubnet, vtepMAC: mac });
  }

  private async programPeers(node: NetnsNode): Promise<void> {
    await this.program(node, [...this.leaseMap.values()].filter((l) => l.node !== node.name));
  }

  private async program(node: NetnsNode, leases: readonly VtepLease[]): Promise<void> {
    if (leases.length === 0) return;
    const cmds = leases.map(peerCommands);
    // Two processes per node whatever the peer count: cluster bring-up stays linear in processes.
    await Promise.all([ipBatch(node.ctx, node.netns, cmds.flatMap((c) => c.ip)), bridgeBatch(node.ctx, node.netns, cmds.flatMap((c) => c.bridge))]);
  }
}
