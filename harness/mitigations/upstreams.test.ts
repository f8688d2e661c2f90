import { describe, expect, it } from 'vitest';
import type { Cluster, ClientPod, ForwardPolicy } from '../providers/provider.ts';
import { dropDeadUpstream } from './upstreams.ts';
import { testContext } from '../testing.ts';

describe('drop-dead-upstream', () => {
  it('asks only address upstreams and keeps a resolv.conf path (kind\'s CoreDNS default) as it is', async () => {
    const asked: string[] = [];
    const set: { servers: readonly string[]; policy: ForwardPolicy }[] = [];
    const client = {
      name: 'c',
      exec: async (argv: readonly string[]) => {
        const server = argv.find((a) => a.startsWith('@'))!.slice(1);
        asked.push(server);
        return { stdout: '', stderr: '', exitCode: server === '10.244.1.9' ? 9 : 0 };
      },
    } as unknown as ClientPod;
    const cluster = {
      clusterDns: {
        upstreams: async () => ({ servers: ['10.244.1.9', '/etc/resolv.conf'], policy: 'random' as const }),
        setUpstreams: async (servers: readonly string[], policy: ForwardPolicy) => void set.push({ servers, policy }),
      },
    } as unknown as Cluster;
    const ctx = testContext(cluster, client, {});
    const m = await dropDeadUpstream.apply(ctx);
    expect(asked).toEqual(['10.244.1.9']);
    expect(set).toEqual([{ servers: ['/etc/resolv.conf'], policy: 'random' }]);
    expect(m.counters).toEqual({ 'dns.upstreamsDropped': 1 });
    expect(await ctx.undo.unwind()).toEqual([]);
    expect(set.at(-1)).toEqual({ servers: ['10.244.1.9', '/etc/resolv.conf'], policy: 'random' });
  });
});
