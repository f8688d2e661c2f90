/** IPv4 helpers: the topology is IPv4 (flannel's default Network 10.244.0.0/16). */
export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

export interface Cidr {
  base: number;
  bits: number;
  text: string;
}

export function parseCidr(s: string): Cidr | undefined {
  const [ip, bits] = s.split('/');
  if (!ip || bits === undefined || !isIPv4(ip) || !/^\d+$/.test(bits) || Number(bits) > 32) return undefined;
  const b = Number(bits);
  const mask = b === 0 ? 0 : (~0 << (32 - b)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, bits: b, text: `${intToIp((ipToInt(ip) & mask) >>> 0)}/${b}` };
}

export function contains(c: Cidr, ip: string): boolean {
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === c.base;
}

/** The n-th address inside a CIDR (0 = network address). */
export function nth(c: Cidr, n: number): string {
  return intToIp((c.base + n) >>> 0);
}

/** The i-th /prefix subnet of a CIDR, e.g. node i's /24 in 10.244.0.0/16. */
export function subnet(c: Cidr, prefix: number, i: number): Cidr {
  const base = (c.base + i * 2 ** (32 - prefix)) >>> 0;
  return { base, bits: prefix, text: `${intToIp(base)}/${prefix}` };
}

/** Whether two CIDRs share any address (one then contains the other's network address). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const wider = a.bits <= b.bits ? a : b;
  const narrower = wider === a ? b : a;
  return contains(wider, intToIp(narrower.base));
}
