import { describe, expect, it } from 'vitest';
import { type DropRow, backgroundLabel, deltaRows, dropKey, dropsOf, dropsUnavailable, isBackground, parseSnapshot, rankByExcess } from './drops.ts';

// The format images/droptracer/vxdrops.c writes (one snapshot: header, rows, trailer).
const snap = (seq: number, rows: string[]) =>
  [`{"snapshot":${seq},"keys":${rows.length},"seen":99,"unattributed":2,"overflow":0,"reasons":true,"watched":[4026532001,4026532002]}`, ...rows, `{"end":${seq}}`].join('\n') + '\n';
const otherhost = (count: number, loc = 'ip_rcv_core') =>
  `{"netns":4026532001,"iface":"flannel.1","reason":"OTHERHOST","func":"${loc}","l3":"ipv4","proto":"udp","port":53,"mcast":false,"via":"dev","count":${count}}`;
const vxlanCsum = (count: number) =>
  `{"netns":4026532002,"iface":"eth0","reason":"UDP_CSUM","func":"__udp4_lib_rcv","l3":"ipv4","proto":"udp","port":8472,"inner_l3":"ipv4","inner_proto":"tcp","inner_port":80,"mcast":false,"via":"dev","count":${count}}`;
const mld = (count: number) =>
  `{"netns":4026532002,"iface":"eth0","reason":"NOT_SPECIFIED","func":"ip6_mc_input","l3":"ipv6","proto":"icmpv6","port":0,"mcast":true,"via":"dev","count":${count}}`;

describe('parseSnapshot', () => {
  it('reads the header and every row; several kernel locations in one function are one row', () => {
    const s = parseSnapshot(snap(3, [otherhost(5), otherhost(2), vxlanCsum(4)]))!;
    expect(s.stats).toEqual({ seq: 3, seen: 99, unattributed: 2, overflow: 0, reasons: true, watched: [4026532001, 4026532002] });
    expect(s.counts.size).toBe(2);
    expect([...s.counts.values()].sort()).toEqual([4, 7]);
  });

  it('refuses a snapshot without its trailer, or with the trailer of another snapshot', () => {
    expect(parseSnapshot(snap(3, [otherhost(1)]).replace('{"end":3}', ''))).toBeUndefined();
    expect(parseSnapshot(snap(3, [otherhost(1)]).replace('{"end":3}', '{"end":2}'))).toBeUndefined();
    expect(parseSnapshot('')).toBeUndefined();
  });

  it('keeps a kernel without reasons apart: reason null becomes n/a', () => {
    const s = parseSnapshot(snap(1, [otherhost(1).replace('"reason":"OTHERHOST"', '"reason":null')]))!;
    expect(deltaRows(new Map(), s.counts)[0]!.reason).toBe('n/a');
  });
});

describe('deltaRows', () => {
  it('returns what grew, named by the watch names, largest first; VXLAN rows carry the inner protocol', () => {
    const before = parseSnapshot(snap(1, [otherhost(5), vxlanCsum(4)]))!.counts;
    const after = parseSnapshot(snap(2, [otherhost(69), vxlanCsum(4), mld(3)]))!.counts;
    const rows = deltaRows(before, after, new Map([[4026532001, 'node-3'], [4026532002, 'node-2']]));
    expect(rows).toEqual([
      { netnsInode: 4026532001, ns: 'node-3', iface: 'flannel.1', reason: 'OTHERHOST', func: 'ip_rcv_core', l3: 'ipv4', proto: 'udp', port: 53, count: 64 },
      { netnsInode: 4026532002, ns: 'node-2', iface: 'eth0', reason: 'NOT_SPECIFIED', func: 'ip6_mc_input', l3: 'ipv6', proto: 'icmpv6', port: 0, multicast: true, count: 3 },
    ]);
    const csum = deltaRows(new Map(), after).find((r) => r.reason === 'UDP_CSUM')!;
    expect(csum).toMatchObject({ ns: '4026532002', port: 8472, innerProto: 'tcp', innerPort: 80, count: 4 });
    expect(dropsOf(rows)).toEqual({ available: true, total: 67, rows });
    expect(dropsUnavailable('no BTF')).toEqual({ available: false, why: 'no BTF', total: 0, rows: [] });
  });

  it('a key round-trips through dropKey', () => {
    const counts = parseSnapshot(snap(1, [vxlanCsum(1)]))!.counts;
    const row = deltaRows(new Map(), counts)[0]!;
    expect(dropKey({ ...row, innerL3: 'ipv4' })).toBe([...counts.keys()][0]);
  });
});

const row = (over: Partial<DropRow>): DropRow => ({ netnsInode: 1, ns: 'node-3', iface: 'flannel.1', reason: 'OTHERHOST', func: 'ip_rcv_core', l3: 'ipv4', proto: 'udp', port: 53, count: 1, ...over });

describe('background and ranking', () => {
  it('labels the noise issue 11 names and nothing else', () => {
    expect(backgroundLabel(row({ l3: 'ipv6', proto: 'icmpv6', multicast: true }))).toBe('IPv6 multicast');
    expect(backgroundLabel(row({ reason: 'NO_SOCKET', proto: 'tcp', port: 80 }))).toBe('TCP teardown');
    expect(backgroundLabel(row({ reason: 'n/a', func: 'unix_stream_connect', proto: 'unknown' }))).toBe('AF_UNIX (nscd probe)');
    expect(backgroundLabel(row({ reason: 'TCP_CLOSE', proto: 'tcp' }))).toBe('TCP teardown');
    expect(backgroundLabel(row({ reason: 'NOT_SPECIFIED', proto: 'tcp', func: 'tcp_v4_rcv', port: 8080 }))).toMatch(/TIME_WAIT/);
    expect(isBackground(row({ reason: 'NOT_SPECIFIED', proto: 'tcp', func: 'nft_do_chain' }))).toBe(false);
    expect(backgroundLabel(row({ reason: 'QUEUE_PURGE', proto: 'tcp' }))).toMatch(/queued/);
    expect(backgroundLabel(row({ reason: 'NO_SOCKET', proto: 'udp', port: 53 }))).toMatch(/late DNS answer/);
    expect(isBackground(row({}))).toBe(false);
    expect(isBackground(row({ reason: 'NO_SOCKET', proto: 'udp', port: 9999 }))).toBe(false);
    expect(isBackground(row({ l3: 'ipv4', multicast: true }))).toBe(false);
  });

  it('ranks by excess over the baseline: the cause first, noise the baseline also had and labelled noise below', () => {
    const cell = [
      row({ reason: 'NO_SOCKET', proto: 'udp', port: 53, count: 90 }),
      row({ ns: 'node-2', iface: 'eth0', reason: 'NETFILTER_DROP', func: 'nft_do_chain', count: 40 }),
      row({ count: 64 }),
      row({ reason: 'NOT_SPECIFIED', func: 'ip6_mc_input', l3: 'ipv6', proto: 'icmpv6', port: 0, multicast: true, count: 500 }),
    ];
    const baseline = [row({ ns: 'node-2', iface: 'eth0', reason: 'NETFILTER_DROP', func: 'nft_do_chain', count: 38 }), row({ reason: 'NO_SOCKET', proto: 'udp', port: 53, count: 10 })];
    const ranked = rankByExcess(cell, baseline);
    expect(ranked.map((r) => [r.reason, r.excess, r.background])).toEqual([
      ['OTHERHOST', 64, undefined],
      ['NETFILTER_DROP', 2, undefined],
      ['NOT_SPECIFIED', 500, 'IPv6 multicast'],
      ['NO_SOCKET', 80, 'late DNS answer (socket already closed)'],
    ]);
    // a row the baseline had as often (or more) sinks below everything that grew
    expect(rankByExcess([row({ count: 3 }), row({ port: 8472, count: 1 })], [row({ count: 5 })]).map((r) => [r.port, r.excess])).toEqual([[8472, 1], [53, -2]]);
  });
});
