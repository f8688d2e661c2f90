import { describe, expect, it } from 'vitest';
import { parseNftCounters, raceRuleset, RACE_TABLE } from './conntrack-race.ts';

describe('conntrack-race emulation ruleset', () => {
  const rules = raceRuleset('10.96.0.10', 20);

  it('drops, with probability P, a second query on one (address, port) while the first is unanswered', () => {
    expect(rules).toContain(`table ip ${RACE_TABLE} {`);
    expect(rules).toMatch(/set inflight \{\n\s+type ipv4_addr \. inet_service\n\s+flags dynamic,timeout\n\s+timeout 1s/);
    expect(rules).toContain('ip daddr 10.96.0.10 udp dport 53 ip saddr . udp sport @inflight counter name second_queries numgen random mod 100 < 20 counter name race_drops drop');
    expect(rules).toContain('ip daddr 10.96.0.10 udp dport 53 add @inflight { ip saddr . udp sport }');
  });

  it('forgets a query when its answer passes, after de-NAT (source is the ClusterIP again)', () => {
    expect(rules).toMatch(/hook postrouting priority 200;[^}]*ip saddr 10\.96\.0\.10 udp sport 53 delete @inflight \{ ip daddr \. udp dport \}/);
    expect(rules).toMatch(/hook input priority 200;[^}]*delete @inflight/);
  });

  it('sees pods (prerouting) and the node itself (output) before conntrack, and never TCP', () => {
    expect(rules).toMatch(/hook prerouting priority raw/);
    expect(rules).toMatch(/hook output priority raw/);
    expect(rules).not.toMatch(/tcp/);
  });

  it('refuses a probability that is not a whole percentage', () => {
    expect(() => raceRuleset('10.96.0.10', 101)).toThrow(/dropPercent/);
    expect(() => raceRuleset('10.96.0.10', 2.5)).toThrow(/dropPercent/);
  });

  it('reads named counters from nft -j', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { counter: { family: 'ip', name: 'second_queries', table: RACE_TABLE, handle: 1, packets: 312, bytes: 23400 } },
        { counter: { family: 'ip', name: 'race_drops', table: RACE_TABLE, handle: 2, packets: 65, bytes: 4875 } },
      ],
    });
    expect(parseNftCounters(json)).toEqual({ second_queries: 312, race_drops: 65 });
    expect(parseNftCounters('')).toEqual({});
  });
});
