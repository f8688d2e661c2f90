import { describe, expect, it } from 'vitest';
import { firstSearchDomain, fullyQualified } from './fqdn.ts';
import { iptablesArgv, NODELOCAL_IP, nodeLocalRules, nodeLocalUnboundConf } from './nodelocaldns.ts';
import { withNameserver, withNameservers, withOptions } from './resolv-options.ts';

const POD = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';

describe('resolv.conf edits', () => {
  it('adds an option and replaces one of the same name, keeping the rest', () => {
    expect(withOptions(POD, ['single-request'])).toBe('search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5 single-request\n');
    expect(withOptions(POD, ['ndots:2'])).toMatch(/^options ndots:2$/m);
    expect(withOptions(POD, ['ndots:2'])).not.toContain('ndots:5');
    expect(withOptions('nameserver 1.1.1.1\n', ['use-vc'])).toBe('nameserver 1.1.1.1\noptions use-vc\n');
  });

  it('adds a second nameserver after the first, once', () => {
    const two = withNameserver(POD, '172.18.0.1');
    expect(two.match(/^nameserver .*/gm)).toEqual(['nameserver 10.96.0.10', 'nameserver 172.18.0.1']);
    expect(withNameserver(two, '172.18.0.1')).toBe(two);
  });

  it('replaces the nameservers, keeping search and options', () => {
    const local = withNameservers(POD, [NODELOCAL_IP]);
    expect(local.match(/^nameserver .*/gm)).toEqual([`nameserver ${NODELOCAL_IP}`]);
    expect(local).toContain('search default.svc.cluster.local');
    expect(local).toContain('options ndots:5');
  });
});

describe('fqdn', () => {
  it('names by FQDN with a trailing dot; a bare service name lands in the pod namespace', () => {
    expect(firstSearchDomain(POD)).toBe('default.svc.cluster.local');
    expect(fullyQualified(['web', 'web.default.svc.cluster.local', 'test.example.cn', 'x.'], 'default.svc.cluster.local')).toEqual([
      'web.default.svc.cluster.local.',
      'web.default.svc.cluster.local.',
      'test.example.cn.',
      'x.',
    ]);
  });
});

describe('nodelocaldns', () => {
  it('programs node-cache\'s NOTRACK rules for the link-local address, both protocols', () => {
    const rules = nodeLocalRules();
    const notrack = rules.filter((r) => r.table === 'raw').map((r) => `${r.chain} ${r.spec.slice(0, 8).join(' ')}`);
    for (const p of ['udp', 'tcp']) {
      expect(notrack).toContain(`PREROUTING -p ${p} -d 169.254.20.10 --dport 53 -j NOTRACK`);
      expect(notrack).toContain(`OUTPUT -p ${p} -s 169.254.20.10 --sport 53 -j NOTRACK`);
      expect(notrack).toContain(`OUTPUT -p ${p} -d 169.254.20.10 --dport 53 -j NOTRACK`);
    }
    expect(iptablesArgv('-I', rules[0]!).slice(0, 7)).toEqual(['iptables', '-w', '5', '-t', 'raw', '-I', 'PREROUTING']);
    expect(iptablesArgv('-D', rules[0]!).slice(3)).toEqual(iptablesArgv('-I', rules[0]!).slice(3).map((a) => (a === '-I' ? '-D' : a)));
  });

  it('caches and forwards to the cluster DNS over TCP, listening on the link-local address only', () => {
    const conf = nodeLocalUnboundConf('10.96.0.10');
    expect(conf).toMatch(/^ {2}interface: 169\.254\.20\.10$/m);
    expect(conf).toMatch(/forward-zone:\n {2}name: "\."\n {2}forward-addr: 10\.96\.0\.10\n {2}forward-tcp-upstream: yes/);
    expect(conf).toContain('cache-max-negative-ttl: 5');
  });
});
