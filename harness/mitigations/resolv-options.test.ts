import { describe, expect, it } from 'vitest';
import type { Cluster, ClientPod } from '../providers/provider.ts';
import { firstSearchDomain, fullyQualified } from './fqdn.ts';
import { NODELOCAL_IP } from './nodelocaldns.ts';
import { extraNameserver, withNameserver, withNameservers, withOptions } from './resolv-options.ts';
import { testContext } from '../testing.ts';

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

describe('extra-nameserver', () => {
  /** A client pod with a resolv.conf in memory, in a cluster whose DNS forwards to `servers`. */
  const fake = (servers: string[]) => {
    let conf = POD;
    const client = { name: 'c', libc: 'musl', readFile: async () => conf, writeFile: async (_p: string, c: string) => void (conf = c) } as unknown as ClientPod;
    const cluster = { clusterDns: { upstreams: async () => ({ servers, policy: 'health-checked' }) } } as unknown as Cluster;
    return { ctx: testContext(cluster, client, {}), conf: () => conf };
  };

  it('adds the first upstream that is an address, skipping a resolv.conf path (kind\'s CoreDNS default)', async () => {
    const f = fake(['/etc/resolv.conf', '172.18.0.1']);
    await extraNameserver.apply(f.ctx);
    expect(f.conf().match(/^nameserver .*/gm)).toEqual(['nameserver 10.96.0.10', 'nameserver 172.18.0.1']);
    expect(await f.ctx.undo.unwind()).toEqual([]);
    expect(f.conf()).toBe(POD);
  });

  it('asks for mitigationParams.nameserver when no upstream is an address', async () => {
    await expect(extraNameserver.apply(fake(['/etc/resolv.conf']).ctx)).rejects.toThrow(/no cluster DNS upstream is an address \(\/etc\/resolv\.conf\); set mitigationParams\.nameserver/);
  });
});
