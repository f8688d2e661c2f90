import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../config/topology.ts';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { flannelDelegateConfig } from './cni.ts';
import { peerCommands } from './flannel.ts';

const topo = loadTopology(`${CLUSTERS_DIR}/three-node.yaml`);

describe('flannel CNI delegate and VXLAN peer state', () => {
  it('delegates to bridge + host-local with the node subnet and a route to the whole Network', () => {
    const c = flannelDelegateConfig(topo, '10.244.1.0/24', '/run/x') as Record<string, any>;
    expect(c).toMatchObject({ type: 'bridge', name: 'cbr0', mtu: 1450, ipMasq: false, isGateway: true, isDefaultGateway: true, hairpinMode: true });
    expect(c.ipam).toEqual({ type: 'host-local', dataDir: '/run/x', ranges: [[{ subnet: '10.244.1.0/24' }]], routes: [{ dst: '10.244.0.0/16' }] });
  });

  it('programs one route, one PERMANENT neighbour and one FDB entry per peer', () => {
    const c = peerCommands({ node: 'node-2', publicIP: '172.18.0.3', subnet: '10.244.1.0/24', vtepMAC: 'aa:bb:cc:dd:ee:ff' });
    expect(c.ip).toEqual([
      'route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink',
      'neigh replace 10.244.1.0 lladdr aa:bb:cc:dd:ee:ff dev flannel.1 nud permanent',
    ]);
    expect(c.bridge).toEqual(['fdb replace aa:bb:cc:dd:ee:ff dev flannel.1 self permanent dst 172.18.0.3']);
  });
});
