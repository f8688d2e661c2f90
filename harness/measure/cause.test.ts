import { describe, expect, it } from 'vitest';
import { checkCause, matchesCause, type Cause } from './cause.ts';
import { cellDrops } from './cell-drops.ts';
import { dropsOf, dropsUnavailable, type DropRow } from './drops.ts';

const row = (r: Partial<DropRow>): DropRow => ({ netnsInode: 1, ns: 'node-3', iface: 'flannel.1', reason: 'OTHERHOST', func: 'ip_rcv_core', l3: 'ipv4', proto: 'udp', port: 53, count: 1, ...r });
const STALE: Cause = { reason: 'OTHERHOST', where: 'node-3', iface: 'flannel.1', func: 'ip_rcv_core' };
const passed = { verdict: 'pass' as const, reason: 'reproduced as expected: 32/98 affected' };
const mcast = row({ ns: 'node-1', iface: 'eth0', reason: 'NOT_SPECIFIED', func: 'ip6_mc_input', l3: 'ipv6', proto: 'icmpv6', port: 0, multicast: true, count: 9 });

describe('checkCause', () => {
  it('a reproducing cell whose cause dropped packets passes and says how many', () => {
    const r = checkCause(STALE, 'reproduces', passed, dropsOf([row({ count: 128 }), mcast]), []);
    expect(r.verdict).toBe('pass');
    expect(r.cause?.dropped).toBe(128);
    expect(r.reason).toContain('cause seen: 128 × OTHERHOST on node-3 flannel.1 (ip_rcv_core)');
    expect(r.drops.total).toBe(137);
  });

  it('a reproducing cell without its cause fails and names the drop that did happen', () => {
    const other = row({ ns: 'node-2', iface: '', reason: 'SOCKET_RCVBUFF', func: 'sock_queue_rcv_skb', count: 40 });
    const r = checkCause(STALE, 'reproduces', passed, dropsOf([mcast, other]), []);
    expect(r.verdict).toBe('fail');
    expect(r.reason).toMatch(/^reproduced, other cause: 40 × SOCKET_RCVBUFF on node-2 \(sock_queue_rcv_skb\)/);
    expect(r.reason).toContain(passed.reason);
    expect(r.cause?.dropped).toBe(0);
  });

  it('background noise and what the baseline also had explain nothing', () => {
    const steady = row({ ns: 'web-node-2', iface: 'eth0', reason: 'NETFILTER_DROP', func: 'nft_do_chain', count: 5 });
    const r = checkCause(STALE, 'reproduces', passed, dropsOf([mcast, steady]), [{ ...steady, count: 7 }]);
    expect(r.verdict).toBe('fail');
    expect(r.reason).toMatch(/^reproduced, no drop explains it/);
  });

  it('a clean cell whose cause still drops keeps its verdict and is flagged', () => {
    const clean = { verdict: 'pass' as const, reason: 'clean as expected' };
    const r = checkCause(STALE, 'clean', clean, dropsOf([row({ count: 3 })]), []);
    expect(r.verdict).toBe('pass');
    expect(r.causeStillDropping).toBe(3);
    expect(r.reason).toContain('flagged');
    const quiet = checkCause(STALE, 'clean', clean, dropsOf([mcast]), []);
    expect(quiet.causeStillDropping).toBeUndefined();
    expect(quiet.reason).toBe(clean.reason);
  });

  it('without drops the verdict stands and the reason says the cause was not checked', () => {
    const r = checkCause(STALE, 'reproduces', passed, dropsUnavailable('no BTF'), undefined);
    expect(r.verdict).toBe('pass');
    expect(r.reason).toContain('cause not checked: drops unavailable (no BTF)');
    expect(r.drops).toEqual({ available: false, why: 'no BTF', total: 0, rows: [] });
  });

  it('on a kernel without drop reasons the verdict stands: no cause can be seen', () => {
    const r = checkCause(STALE, 'reproduces', passed, { ...dropsOf([row({ reason: 'n/a' })]), reasons: false }, []);
    expect(r.verdict).toBe('pass');
    expect(r.reason).toContain('cause not checked: this kernel names no drop reasons');
    expect(r.drops.reasons).toBe(false);
  });

  it('leaves verdicts other than pass alone, and cells without a cause unchanged', () => {
    const nr = { verdict: 'not-reproduced' as const, reason: 'expected the symptom' };
    expect(checkCause(STALE, 'reproduces', nr, dropsOf([]), []).verdict).toBe('not-reproduced');
    const dry = { verdict: 'skipped' as const, reason: 'dry run: nothing measured' };
    expect(checkCause(STALE, 'reproduces', dry, dropsUnavailable('no tracer'), undefined)).toMatchObject(dry);
    const r = checkCause(undefined, 'reproduces', passed, dropsOf([]), []);
    expect(r).toMatchObject(passed);
    expect(r.cause).toBeUndefined();
  });

  it('matches only the fields the cause names', () => {
    expect(matchesCause(row({ ns: 'node-1' }), { reason: 'OTHERHOST' })).toBe(true);
    expect(matchesCause(row({ ns: 'node-1' }), STALE)).toBe(false);
    expect(matchesCause(row({ iface: 'eth0' }), { reason: 'OTHERHOST', where: 'node-3', iface: 'flannel.1' })).toBe(false);
  });

  it('finds its cause below the rows a cell keeps', () => {
    const noise = Array.from({ length: 30 }, (_, i) => row({ ns: `pod-${i}`, reason: 'NO_SOCKET', func: 'x', port: 9000 + i, count: 50 }));
    const r = checkCause(STALE, 'reproduces', passed, dropsOf([...noise, row({ count: 2 })]), []);
    expect(r.drops.rows).toHaveLength(20);
    expect(r.drops.omitted).toBe(11);
    expect(r.cause?.dropped).toBe(2);
    expect(r.verdict).toBe('pass');
  });
});

describe('cellDrops', () => {
  it('ranks by excess over the baseline and says whether it had one', () => {
    const base = [row({ ns: 'node-1', reason: 'NETFILTER_DROP', count: 10 })];
    const d = cellDrops(dropsOf([row({ ns: 'node-1', reason: 'NETFILTER_DROP', count: 12 }), row({ count: 4 })]), base);
    expect(d.rows.map((r) => [r.ns, r.excess])).toEqual([
      ['node-3', 4],
      ['node-1', 2],
    ]);
    expect(d.ranked).toBe(true);
    expect(cellDrops(dropsOf([]), undefined).ranked).toBe(false);
  });
});
