/**
 * IPv4 address arithmetic for hull's own address allocation (pure). A network is a subnet with a
 * gateway (the bridge's address, and the DNS server's) and an optional range addresses are leased
 * from; a container's address is the lowest free one in the range, or the one it asked for.
 */
import { invalid } from '../errors.js';

export interface Cidr {
  /** The address as written (for a subnet: its network address). */
  addr: number;
  prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Dotted quad -> unsigned 32-bit integer; undefined when it is not one. */
export function ipToInt(s: string): number | undefined {
  const m = IPV4.exec(s);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return undefined;
  return ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIpv4(s: string): boolean {
  return ipToInt(s) !== undefined;
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** 'a.b.c.d/n' -> Cidr. INVALID_ARGUMENT naming `what` when malformed. */
export function parseCidr(s: string, what = 'subnet'): Cidr {
  const [ip, p, extra] = s.split('/');
  const addr = ipToInt(ip ?? '');
  const prefix = p !== undefined && /^\d{1,2}$/.test(p) ? Number(p) : NaN;
  if (addr === undefined || extra !== undefined || !(prefix >= 0 && prefix <= 32)) {
    throw invalid(`invalid ${what} ${JSON.stringify(s)}: want an IPv4 CIDR such as 10.1.2.0/24 (IPv6 is not supported)`);
  }
  return { addr, prefix };
}

export function networkOf(c: Cidr): number {
  return (c.addr & mask(c.prefix)) >>> 0;
}

export function broadcastOf(c: Cidr): number {
  return (networkOf(c) | ~mask(c.prefix)) >>> 0;
}

export function cidrString(c: Cidr): string {
  return `${intToIp(c.addr)}/${c.prefix}`;
}

/** A subnet in canonical form ('10.1.2.0/24'); refuses host bits set, like docker. */
export function canonicalSubnet(s: string): string {
  const c = parseCidr(s);
  if (networkOf(c) !== c.addr) throw invalid(`invalid subnet ${s}: it has host bits set (did you mean ${intToIp(networkOf(c))}/${c.prefix}?)`);
  if (c.prefix > 30 || c.prefix < 8) throw invalid(`invalid subnet ${s}: the prefix must be between /8 and /30`);
  return cidrString(c);
}

export function contains(c: Cidr, ip: number): boolean {
  return (ip & mask(c.prefix)) >>> 0 === networkOf(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.addr & mask(p)) >>> 0 === (b.addr & mask(p)) >>> 0;
}

/** The usable host addresses of a subnet: [first, last], network and broadcast excluded. */
export function hostRange(c: Cidr): [number, number] {
  return [networkOf(c) + 1, broadcastOf(c) - 1];
}

/** Checks that `ip` is a usable host address of `subnet`; returns it as an integer. */
export function hostIn(subnet: Cidr, ip: string, what: string): number {
  const n = ipToInt(ip);
  if (n === undefined) throw invalid(`invalid ${what} ${JSON.stringify(ip)}: want an IPv4 address`);
  const [lo, hi] = hostRange(subnet);
  if (!contains(subnet, n) || n < lo || n > hi) throw invalid(`invalid ${what} ${ip}: it is not a host address of ${cidrString(subnet)}`);
  return n;
}

/**
 * The lowest free address of `range` (default: the whole subnet), skipping the gateway and
 * every address in `used`. Undefined when the range is full.
 */
export function firstFree(subnet: Cidr, gateway: number, used: Set<number>, range?: Cidr): number | undefined {
  let [lo, hi] = hostRange(subnet);
  if (range) {
    lo = Math.max(lo, networkOf(range));
    hi = Math.min(hi, broadcastOf(range));
  }
  for (let n = lo; n <= hi; n++) if (n !== gateway && !used.has(n)) return n;
  return undefined;
}

/** docker's MAC for an address: 02:42 followed by the four address bytes. */
export function macForIp(ip: string): string {
  const n = ipToInt(ip);
  if (n === undefined) throw invalid(`invalid address ${ip}`);
  return ['02', '42', ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** A unicast MAC, normalized to lower case; INVALID_ARGUMENT otherwise. */
export function parseMac(s: string): string {
  const m = s.trim().toLowerCase();
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m)) throw invalid(`invalid MAC address ${JSON.stringify(s)}: want six hex bytes such as 02:42:ac:11:00:02`);
  if (parseInt(m.slice(0, 2), 16) & 1) throw invalid(`invalid MAC address ${s}: it is a multicast address`);
  if (m === '00:00:00:00:00:00') throw invalid(`invalid MAC address ${s}`);
  return m;
}
