import { VxError } from '../errors.ts';

/**
 * Classic libpcap files as `tcpdump -w` writes them: a 24-byte global header (magic gives byte order and
 * µs/ns resolution), then per packet a 16-byte header (ts_sec, ts_frac, incl_len, orig_len) and the bytes.
 */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;

export interface PcapPacket {
  /** Nanoseconds since the whole second of the first packet (fits a double for any capture we take). */
  tNs: number;
  data: Uint8Array;
}

export interface Pcap {
  linkType: number;
  nanos: boolean;
  /** Epoch second the tNs values count from. */
  epochS: number;
  packets: PcapPacket[];
}

export function parsePcap(buf: Uint8Array): Pcap {
  if (buf.length < 24) throw new VxError('E_PCAP', `pcap file too short (${buf.length} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le = true;
  let magic = view.getUint32(0, true);
  if (magic !== PCAP_MAGIC_US && magic !== PCAP_MAGIC_NS) {
    le = false;
    magic = view.getUint32(0, false);
  }
  if (magic !== PCAP_MAGIC_US && magic !== PCAP_MAGIC_NS) {
    throw new VxError('E_PCAP', `not a pcap file (magic 0x${view.getUint32(0, true).toString(16)}; pcapng is not supported)`);
  }
  const nanos = magic === PCAP_MAGIC_NS;
  const linkType = view.getUint32(20, le) & 0x0fffffff;
  const packets: PcapPacket[] = [];
  let epochS: number | undefined;
  let off = 24;
  // A capture stopped by a signal may end in a partial record: keep what is whole.
  while (off + 16 <= buf.length) {
    const sec = view.getUint32(off, le);
    const frac = view.getUint32(off + 4, le);
    const incl = view.getUint32(off + 8, le);
    if (off + 16 + incl > buf.length) break;
    epochS ??= sec;
    const tNs = (sec - epochS) * 1e9 + (nanos ? frac : frac * 1000);
    packets.push({ tNs, data: buf.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return { linkType, nanos, epochS: epochS ?? 0, packets };
}

export interface DnsPacket {
  tNs: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** DNS message ID. */
  id: number;
  /** QR bit: a response. */
  response: boolean;
}

const ipv4 = (b: Uint8Array, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** Offset of the IPv4 header inside a captured frame, or -1 when it is not IPv4. */
function ipOffset(linkType: number, d: Uint8Array): number {
  const u16 = (o: number) => ((d[o] ?? 0) << 8) | (d[o + 1] ?? 0);
  if (linkType === LINKTYPE_RAW) return (d[0] ?? 0) >> 4 === 4 ? 0 : -1;
  if (linkType === LINKTYPE_LINUX_SLL) return d.length >= 16 && u16(14) === 0x0800 ? 16 : -1;
  if (linkType !== LINKTYPE_ETHERNET || d.length < 14) return -1;
  let type = u16(12);
  let o = 14;
  while ((type === 0x8100 || type === 0x88a8) && d.length >= o + 4) {
    type = u16(o + 2);
    o += 4;
  }
  return type === 0x0800 ? o : -1;
}

/** The DNS-over-UDP/IPv4 packets of a capture (port 53 on either side); everything else is skipped. */
export function dnsPackets(p: Pcap): DnsPacket[] {
  const out: DnsPacket[] = [];
  for (const { tNs, data: d } of p.packets) {
    const ip = ipOffset(p.linkType, d);
    if (ip < 0 || d.length < ip + 20 || (d[ip]! >> 4) !== 4) continue;
    const ihl = (d[ip]! & 0x0f) * 4;
    const fragOff = ((d[ip + 6]! & 0x1f) << 8) | d[ip + 7]!;
    if (d[ip + 9] !== 17 || fragOff !== 0) continue;
    const udp = ip + ihl;
    if (d.length < udp + 8 + 4) continue;
    const sport = (d[udp]! << 8) | d[udp + 1]!;
    const dport = (d[udp + 2]! << 8) | d[udp + 3]!;
    if (sport !== 53 && dport !== 53) continue;
    const dns = udp + 8;
    out.push({
      tNs,
      src: ipv4(d, ip + 12),
      sport,
      dst: ipv4(d, ip + 16),
      dport,
      id: (d[dns]! << 8) | d[dns + 1]!,
      response: (d[dns + 2]! & 0x80) !== 0,
    });
  }
  return out;
}

/** One getaddrinfo() as the wire saw it: first query sent → the answer that completed the lookup. */
export interface CapturedLookup {
  /** The client socket's source port. */
  port: number;
  startNs: number;
  endNs: number;
  durationUs: number;
  /** Query packets sent, retries included. */
  queries: number;
  /** Distinct DNS IDs asked (A and AAAA: 2). */
  ids: number;
  /** Every ID got an answer. */
  complete: boolean;
}

/**
 * Groups the DNS packets of one client that resolves strictly one name at a time (probe -t 1) into
 * lookups. musl and glibc open one socket per getaddrinfo() and send A and AAAA (and their retries) from
 * it, so a lookup is a run of queries from one source port; the next lookup starts on a new port. It ends
 * when every ID asked has its first answer — what the resolver waits for. Answers to a socket that has
 * moved on (duplicates, late replies) are not part of any lookup.
 */
export function sequentialLookups(pkts: readonly DnsPacket[], client: string): CapturedLookup[] {
  const sorted = [...pkts].sort((a, b) => a.tNs - b.tNs);
  const out: CapturedLookup[] = [];
  let cur: { port: number; startNs: number; queries: number; asked: Set<number>; answered: Map<number, number> } | undefined;
  const close = () => {
    if (!cur) return;
    const endNs = cur.answered.size ? Math.max(...cur.answered.values()) : cur.startNs;
    out.push({
      port: cur.port,
      startNs: cur.startNs,
      endNs,
      durationUs: (endNs - cur.startNs) / 1000,
      queries: cur.queries,
      ids: cur.asked.size,
      complete: cur.asked.size > 0 && [...cur.asked].every((id) => cur!.answered.has(id)),
    });
  };
  for (const p of sorted) {
    if (!p.response && p.src === client && p.dport === 53) {
      if (!cur || cur.port !== p.sport) {
        close();
        cur = { port: p.sport, startNs: p.tNs, queries: 0, asked: new Set(), answered: new Map() };
      }
      cur.queries++;
      cur.asked.add(p.id);
    } else if (p.response && p.dst === client && p.sport === 53 && cur && p.dport === cur.port) {
      if (cur.asked.has(p.id) && !cur.answered.has(p.id)) cur.answered.set(p.id, p.tNs);
    }
  }
  close();
  return out;
}

/** tcpdump's exit statistics ("N packets captured … N packets dropped by kernel"). */
export function parseTcpdumpStats(stderr: string): { captured?: number; received?: number; dropped?: number } {
  const n = (re: RegExp) => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) : undefined;
  };
  return {
    captured: n(/(\d+) packets? captured/),
    received: n(/(\d+) packets? received by filter/),
    dropped: n(/(\d+) packets? dropped by kernel/),
  };
}
