import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { checkCause, type Cause } from '../measure/cause.ts';
import { dropsOf, dropsUnavailable, type DropRow, type Drops } from '../measure/drops.ts';
import { dropCause } from './cross-kernel.ts';
import { diedText, packetsOf, whereItDied } from './drops-text.ts';
import { renderHtml } from './html.ts';
import { renderJUnit } from './junit.ts';
import { renderMarkdown } from './markdown.ts';
import { failsRun, type Cell } from './matrix.ts';
import { renderTerminal } from './terminal.ts';
import { makeCell, makeMatrix } from './test-fixtures.ts';

const row = (r: Partial<DropRow>): DropRow => ({ netnsInode: 1, ns: 'node-3', iface: 'flannel.1', reason: 'OTHERHOST', func: 'ip_rcv_core', l3: 'ipv4', proto: 'udp', port: 53, count: 64, ...r });
const STALE: Cause = { reason: 'OTHERHOST', where: 'node-3', iface: 'flannel.1', func: 'ip_rcv_core' };
const mcast = row({ ns: 'node-1', iface: 'eth0', reason: 'NOT_SPECIFIED', func: 'ip6_mc_input', l3: 'ipv6', proto: 'icmpv6', port: 0, multicast: true, count: 7 });

/** A fixture cell with drops checked the way runCell checks them. */
function withDrops(c: Cell, drops: Drops, cause?: Cause, baseline: DropRow[] = []): Cell {
  const { verdict, reason, ...fields } = checkCause(cause, c.expectation, { verdict: c.verdict, reason: c.reason }, drops, baseline);
  return { ...c, verdict, reason, failsRun: failsRun(verdict, c.faultMode, true), ...fields };
}

const third = Math.round(5000 / 3);
const baseline = withDrops(makeCell({ client: 'musl' }, 1), dropsOf([mcast]));
const stale = withDrops(makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', errors: third }, 2), dropsOf([row({}), mcast]), STALE, [mcast]);
const otherCause = withDrops(
  makeCell({ client: 'glibc', fault: 'mac-churn', faultMode: 'stale-peers', errors: third }, 3),
  dropsOf([row({ ns: 'node-2', iface: '', reason: 'SOCKET_RCVBUFF', func: 'sock_queue_rcv_skb', count: 40 })]),
  STALE,
);
const stillDropping = withDrops(makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', mitigation: 'neigh-resync' }, 4), dropsOf([row({ count: 3 })]), STALE);
const m = makeMatrix([baseline, stale, otherCause, stillDropping]);
m.failed = m.cells.filter((c) => c.failsRun).length;

describe('where it died', () => {
  it('names count, packets, place, reason and function', () => {
    expect(diedText(row({}))).toBe('64 DNS packets died on node-3 flannel.1: OTHERHOST (ip_rcv_core)');
    expect(packetsOf(row({ port: 8472, innerProto: 'tcp', innerPort: 8080 }))).toBe('TCP :8080 packets in VXLAN');
    expect(diedText(row({ count: 1, proto: 'tcp', port: 80, ns: 'node-1', iface: '' }))).toBe('1 TCP :80 packet died on node-1: OTHERHOST (ip_rcv_core)');
    expect(whereItDied(stale)).toBe('64 DNS packets died on node-3 flannel.1: OTHERHOST (ip_rcv_core)');
    // Background alone explains nothing.
    expect(whereItDied(baseline)).toBeUndefined();
  });

  it('the terminal table notes one line per cell that lost packets, and flags a clean cell still dropping', () => {
    const t = renderTerminal(m);
    expect(t).toContain('Where it died');
    expect(t).toContain('musl × mac-churn(stale-peers) × none: 64 DNS packets died on node-3 flannel.1: OTHERHOST (ip_rcv_core)');
    expect(t).toContain('glibc × mac-churn(stale-peers) × none: 40 DNS packets died on node-2: SOCKET_RCVBUFF (sock_queue_rcv_skb)');
    expect(t).toMatch(/neigh-resync: 3 DNS packets died .*\[flagged: the fault's cause still dropped 3 × OTHERHOST on node-3 flannel\.1/);
    expect(t).toContain('reproduced, other cause: 40 × SOCKET_RCVBUFF on node-2 (sock_queue_rcv_skb)');
  });

  it('the Markdown summary has the same lines', () => {
    const md = renderMarkdown(m);
    expect(md).toContain('### Where it died');
    expect(md).toContain('- **musl / mac-churn(stale-peers) / none** — 64 DNS packets died on node-3 flannel.1: OTHERHOST (ip_rcv_core)');
    expect(md).toMatch(/neigh-resync\*\* — .*⚑ the fault's cause still dropped 3/);
  });

  it('a run without drops says so once, with why', () => {
    const off = makeMatrix([withDrops(makeCell({ client: 'musl' }, 1), dropsUnavailable('not root')), withDrops(makeCell({ client: 'glibc' }, 2), dropsUnavailable('not root'))]);
    expect(renderTerminal(off)).toContain('drops: unavailable (not root)');
    expect(renderMarkdown(off)).toContain('drops: unavailable (not root)');
    expect(renderHtml(off)).toContain('drops: unavailable (not root)');
    // A matrix written before drops existed renders no section at all.
    expect(renderMarkdown(makeMatrix([makeCell({ client: 'musl' }, 1)]))).not.toContain('Where it died');
  });

  it('the cross-kernel report reads the same field: the top row that is not background', () => {
    expect(dropCause(stale)).toEqual({ reason: 'OTHERHOST', func: 'ip_rcv_core', count: 64, ns: 'node-3', iface: 'flannel.1' });
    expect(dropCause(baseline)).toBeUndefined();
  });

  it('JUnit failure messages name the cause', () => {
    const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (n) => ['testcase', 'failure'].includes(n) });
    const cases = parser.parse(renderJUnit(m)).testsuites.testsuite.testcase as { '@name': string; failure?: { '@message': string }[]; 'system-out': string }[];
    const failed = cases.find((c) => c['@name'] === 'glibc / mac-churn(stale-peers) / none')!;
    expect(failed.failure?.[0]?.['@message']).toMatch(/^reproduced, other cause: 40 × SOCKET_RCVBUFF on node-2 .*where it died: 40 DNS packets died on node-2: SOCKET_RCVBUFF/);
    const ok = cases.find((c) => c['@name'] === 'musl / mac-churn(stale-peers) / none')!;
    expect(ok.failure).toBeUndefined();
    expect(ok['system-out']).toContain('where it died: 64 DNS packets died on node-3 flannel.1');
  });
});

describe('HTML cell cards', () => {
  const html = renderHtml(m);
  const card = (id: string) => html.slice(html.indexOf(`id="${id}"`), html.indexOf('</section>', html.indexOf(`id="${id}"`)));

  it('carry a drops table with the declared cause marked and background labelled', () => {
    const c = card('cell-2');
    expect(c).toContain('<h4>Where it died</h4>');
    expect(c).toContain('<b>64 DNS packets died on node-3 flannel.1: OTHERHOST (ip_rcv_core)</b>');
    expect(c).toMatch(/<tr class="cause"><td>node-3<\/td><td><code>flannel\.1<\/code><\/td><td><code>OTHERHOST<\/code><\/td>.*<td>64<\/td><td>64<\/td><td>declared cause<\/td><\/tr>/);
    // The baseline's multicast: background, and no excess over the baseline.
    expect(c).toMatch(/<tr class="background"><td>node-1<\/td>.*<td>7<\/td><td>0<\/td><td>IPv6 multicast<\/td><\/tr>/);
  });

  it('show the counters that moved and fold the rest', () => {
    const counters = { 'neigh.stale': 2, 'conntrack.insert_failed': 0, 'udp.InCsumErrors': 0 };
    const page = renderHtml(makeMatrix([makeCell({ client: 'musl', fault: 'mac-churn', faultMode: 'stale-peers', errors: third, counters }, 2)]));
    const moved = page.slice(page.indexOf('<h4>Kernel counters</h4>'), page.indexOf('<details class="folded">'));
    expect(moved).toContain('<code>neigh.stale</code>');
    expect(moved).not.toContain('udp.InCsumErrors');
    const folded = page.slice(page.indexOf('<details class="folded">'), page.indexOf('</details>', page.indexOf('<details class="folded">')));
    expect(folded).toContain('<summary>2 counters that did not move</summary>');
    expect(folded).toContain('<code>conntrack.insert_failed</code>');
    expect(folded).toContain('<code>udp.InCsumErrors</code>');
  });
});
