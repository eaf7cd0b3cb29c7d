/**
 * Subnets that collide with nothing on this machine. Every hull network holds a machine-wide
 * claim on its subnet, a file in /run/hull/subnets (HULL_NET_RUN_DIR moves it) naming the hull
 * root and network; a new subnet must overlap no claim and no route of the host (podman's,
 * docker's and any other bridge show up there while in use). A claim whose root no longer has a
 * database is stale (a removed test root) and is taken over. Claims are made under one
 * machine-wide lock, so two roots never take the same subnet.
 *
 * hull's pool is 10.214.0.0/15 in /24s: away from docker (172.17-31/16, 192.168/16), podman
 * (10.88/16 and up from 10.89.0.0/24), and the usual Kubernetes ranges (10.96/12, 10.244/16).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { conflict, unavailable } from '../errors.js';
import { cidrString, intToIp, overlaps, parseCidr, type Cidr } from './ipam.js';
import { withFileLock } from './lock.js';

export const POOL = '10.214.0.0/15';
export const POOL_PREFIX = 24;

export function claimsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.HULL_NET_RUN_DIR ?? '/run/hull', 'subnets');
}

export interface Claim {
  subnet: string;
  root: string;
  network: string;
}

const fileOf = (dir: string, subnet: string) => path.join(dir, subnet.replace('/', '_'));

/** /proc/net/route prints an address as the hex of its bytes read little-endian. */
function fromProcHex(h: string): number {
  const v = parseInt(h, 16) >>> 0;
  return (((v & 255) << 24) >>> 0) + (((v >>> 8) & 255) << 16) + (((v >>> 16) & 255) << 8) + (v >>> 24);
}

/** The IPv4 routes of the host's main table (/proc/net/route) with their device, default route excluded. */
export function hostRoutes(text?: string): (Cidr & { dev: string })[] {
  let t = text;
  if (t === undefined) {
    try {
      t = fs.readFileSync('/proc/net/route', 'utf8');
    } catch {
      return [];
    }
  }
  const out: (Cidr & { dev: string })[] = [];
  for (const line of t.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = fromProcHex(f[1]!);
    const m = fromProcHex(f[7]!);
    if (m === 0) continue;
    let prefix = 0;
    while (prefix < 32 && (m >>> (31 - prefix)) & 1) prefix++;
    out.push({ addr: dest, prefix, dev: f[0]! });
  }
  return out;
}

function readClaims(dir: string): Claim[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Claim[] = [];
  for (const n of names) {
    if (!/^\d+\.\d+\.\d+\.\d+_\d+$/.test(n)) continue;
    try {
      const [root, network] = fs.readFileSync(path.join(dir, n), 'utf8').split('\n');
      out.push({ subnet: n.replace('_', '/'), root: root ?? '', network: network ?? '' });
    } catch {
      /* removed meanwhile */
    }
  }
  return out;
}

/** A claim is live while its root still has a database (and, for this root, the network exists). */
function live(c: Claim, root: string, exists: (network: string) => boolean): boolean {
  if (c.root === root) return exists(c.network);
  return fs.existsSync(path.join(c.root, 'hull.db'));
}

function writeClaim(dir: string, c: Claim): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = path.join(dir, `.${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, `${c.root}\n${c.network}\n`);
  fs.renameSync(tmp, fileOf(dir, c.subnet));
}

/**
 * Claims `wanted` (a user's --subnet) or the first free /24 of the pool for `network` of `root`.
 * CONFLICT when `wanted` overlaps a live claim or a host route (docker's message).
 * @param exists whether a network id of this root still exists (its own stale claims are freed).
 */
export async function claimSubnet(root: string, network: string, wanted: string | undefined, exists: (network: string) => boolean, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = claimsDir(env);
  return withFileLock(path.join(dir, '.lock'), async () => {
    const all = readClaims(dir);
    const claims = all.filter((c) => live(c, root, exists));
    // a stale claim (its root's database is gone, or its network) is dropped while we hold the lock
    for (const c of all) if (!claims.includes(c)) fs.rmSync(fileOf(dir, c.subnet), { force: true });
    const busy = [...claims.map((c) => parseCidr(c.subnet)), ...hostRoutes()];
    if (wanted !== undefined) {
      const w = parseCidr(wanted);
      if (busy.some((b) => overlaps(b, w))) throw conflict(`Pool overlaps with other one on this address space: ${wanted} is in use on this machine`);
      writeClaim(dir, { subnet: wanted, root, network });
      return wanted;
    }
    const pool = parseCidr(POOL);
    const count = 2 ** (POOL_PREFIX - pool.prefix);
    // start where this root hashes to, so roots rarely probe the same subnets
    const start = crypto.createHash('sha256').update(root).digest().readUInt32BE(0) % count;
    for (let i = 0; i < count; i++) {
      const k = (start + i) % count;
      const c: Cidr = { addr: (pool.addr + k * 2 ** (32 - POOL_PREFIX)) >>> 0, prefix: POOL_PREFIX };
      if (busy.some((b) => overlaps(b, c))) continue;
      const subnet = cidrString(c);
      writeClaim(dir, { subnet, root, network });
      return subnet;
    }
    throw unavailable(`no free /${POOL_PREFIX} left in hull's pool ${POOL} (${intToIp(pool.addr)}): remove unused networks, or give --subnet`);
  });
}

/** Drops the claim of `subnet` when it is this root's network's (idempotent). */
export function releaseSubnet(root: string, network: string, subnet: string, env: NodeJS.ProcessEnv = process.env): void {
  const f = fileOf(claimsDir(env), subnet);
  try {
    const [r, n] = fs.readFileSync(f, 'utf8').split('\n');
    if (r === root && n === network) fs.rmSync(f, { force: true });
  } catch {
    /* not claimed */
  }
}

/** This root's claims (for leak checks and `hull system check`). */
export function claimsOf(root: string, env: NodeJS.ProcessEnv = process.env): Claim[] {
  return readClaims(claimsDir(env)).filter((c) => c.root === root);
}
