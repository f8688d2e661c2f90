import { describe, expect, it } from 'vitest';
import { loadTopology } from '../../config/topology.ts';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { natTable, portProtoHash, postroutingOnly, svcChain, type ServiceEndpoints } from './kube-proxy.ts';

const topo = loadTopology(`${CLUSTERS_DIR}/three-node.yaml`);
const dns: ServiceEndpoints = {
  portName: 'kube-system/kube-dns:dns',
  clusterIP: '10.96.0.10',
  port: 53,
  protocol: 'udp',
  endpoints: [
    { ip: '10.244.0.2', port: 53 },
    { ip: '10.244.1.2', port: 53 },
    { ip: '10.244.2.2', port: 53 },
  ],
};

describe('kube-proxy iptables chains', () => {
  it('names chains exactly as kube-proxy does (the well-known kube-dns chains)', () => {
    expect(portProtoHash('kube-system/kube-dns:dnsudp')).toBe('TCOU7JCQXEZGVUNU');
    expect(portProtoHash('kube-system/kube-dns:dns-tcptcp')).toBe('ERIFXISQEP7F7OF4');
    expect(svcChain(dns)).toBe('KUBE-SVC-TCOU7JCQXEZGVUNU');
  });

  it('spreads endpoints with statistic-mode probabilities 1/3, 1/2, rest', () => {
    const t = natTable(topo, '10.244.0.0/24', [dns]);
    const jumps = t.split('\n').filter((l) => l.startsWith('-A KUBE-SVC-TCOU7JCQXEZGVUNU') && l.includes('KUBE-SEP-'));
    expect(jumps).toHaveLength(3);
    expect(jumps[0]).toContain('--probability 0.3333333333');
    expect(jumps[1]).toContain('--probability 0.5000000000');
    expect(jumps[2]).not.toContain('--probability');
    expect(t).toContain('-j DNAT --to-destination 10.244.2.2:53');
    // Node-originated traffic to the ClusterIP is marked for SNAT.
    expect(t).toContain('-A KUBE-SVC-TCOU7JCQXEZGVUNU ! -s 10.244.0.0/16 -d 10.96.0.10/32');
    expect(t.trim().endsWith('COMMIT')).toBe(true);
  });

  it('historic KUBE-POSTROUTING masquerades every marked packet; fixed clears the mark first (PR 92035)', () => {
    const historic = postroutingOnly('historic');
    expect(historic).toContain('-m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully');
    expect(historic).not.toContain('RETURN');
    const fixed = postroutingOnly('fixed').split('\n').filter((l) => l.startsWith('-A'));
    expect(fixed[0]).toBe('-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN');
    expect(fixed[1]).toBe('-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000');
    expect(fixed[2]).toContain('-j MASQUERADE --random-fully');
    expect(postroutingOnly('fixed', false)).not.toContain('random-fully');
  });
});
