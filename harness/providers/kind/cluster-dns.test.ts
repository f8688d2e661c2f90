import { describe, expect, it } from 'vitest';
import { corefileWithForward, deadUpstreamManifest, forwardOf } from './cluster-dns.ts';

// The shape of kind's default Corefile (written here, not copied): a root zone with kubernetes + forward.
const corefile = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    reload
}
`;

describe('CoreDNS forward rewriting (kind clusterDns)', () => {
  it('replaces only the forward block, per policy', () => {
    const random = corefileWithForward(corefile, { servers: ['10.244.1.9', '172.18.0.1'], policy: 'random' });
    expect(random).toContain('forward . 10.244.1.9 172.18.0.1 {\n       policy random\n       max_fails 0');
    expect(random).toContain('kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure');
    expect(random).not.toContain('/etc/resolv.conf');
    expect(forwardOf(random)).toEqual({ servers: ['10.244.1.9', '172.18.0.1'], policy: 'random' });
    const checked = corefileWithForward(random, { servers: ['172.18.0.1'], policy: 'health-checked' });
    expect(forwardOf(checked)).toEqual({ servers: ['172.18.0.1'], policy: 'health-checked' });
    expect(checked.match(/forward \./g)).toHaveLength(1);
  });

  it('reads the default forward as health-checked to /etc/resolv.conf', () => {
    expect(forwardOf(corefile)).toEqual({ servers: ['/etc/resolv.conf'], policy: 'health-checked' });
    expect(() => corefileWithForward('.:53 {\n  errors\n}\n', { servers: ['1.2.3.4'], policy: 'random' })).toThrow(/no `forward \.` block/);
  });

  it('the dead upstream is the probe image reading port 53 without answering', () => {
    const m = deadUpstreamManifest('r1') as { spec: { containers: { command: string[] }[] } };
    expect(m.spec.containers[0]!.command).toEqual(['/usr/local/bin/vxprobe', '-B', '53']);
  });
});
