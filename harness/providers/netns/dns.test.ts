import { describe, expect, it } from 'vitest';
import { CLUSTERS_DIR } from '../../config/suite.ts';
import { loadTopology } from '../../config/topology.ts';
import { deadUpstreamAddress, forwardPolicyConf, unboundConf } from './dns.ts';

const topo = loadTopology(`${CLUSTERS_DIR}/three-node.yaml`);

describe('cluster DNS forwarder policies (unbound for CoreDNS forward)', () => {
  it('forwards to the upstreams in order, with the policy\'s knobs in the server section', () => {
    const conf = unboundConf(topo, { dir: '/x', upstreams: ['172.18.255.254', '172.18.0.1'], policy: 'random' });
    expect(conf).toMatch(/forward-zone:\n {2}name: "\."\n {2}forward-addr: 172\.18\.255\.254\n {2}forward-addr: 172\.18\.0\.1\n/);
    expect(conf.indexOf('infra-host-ttl: 1')).toBeLessThan(conf.indexOf('forward-zone:'));
  });

  it('random forgets upstream health within seconds; health-checked keeps unbound\'s memory', () => {
    expect(forwardPolicyConf('random')).toEqual(expect.arrayContaining(['infra-host-ttl: 1', 'unknown-server-time-limit: 376']));
    expect(forwardPolicyConf('health-checked').some((l) => l.startsWith('infra-host-ttl'))).toBe(false);
    // Both wait on a silent upstream and deliver a late answer, as CoreDNS does.
    for (const p of ['random', 'health-checked'] as const) expect(forwardPolicyConf(p)).toEqual(expect.arrayContaining(['infra-cache-min-rtt: 1000', 'discard-timeout: 10000']));
  });

  it('refuses sequential: unbound has no ordered forwarding', () => {
    expect(() => forwardPolicyConf('sequential')).toThrow(/sequential/);
  });

  it('puts the dead upstream inside the run: the last host address of the underlay', () => {
    expect(deadUpstreamAddress(topo)).toBe('172.18.255.254');
  });
});
