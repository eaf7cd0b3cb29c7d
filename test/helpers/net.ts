/**
 * Network test helpers: what of a hull root's network is in the kernel and the store (for the
 * leak checks before/after), free ports on 127.0.0.1, HTTP and UDP clients that talk only to
 * 127.0.0.1 or to addresses on the root's own bridges, and the UDP echo fixture.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { bridgePrefixOf, netPaths, nftTable } from '../../src/network/names.js';
import { hull, processesMentioning, staticFixtureDir } from './hull.js';

export interface NetState {
  /** Namespace files under <root>/run/netns and nsfs mounts under the root. */
  netns: string[];
  /** The root's bridges and the veths on them. */
  bridges: string[];
  veths: string[];
  /** Elements of the root's nftables table (ports, ipports); table: whether it exists. */
  table: boolean;
  portRules: string[];
  /** aardvark-dns files of the root and its server processes. */
  dnsFiles: string[];
  dnsServers: string[];
  /** Store rows that exist only while something is set up. */
  addresses: number;
  ports: number;
  sandboxes: number;
}

function rows(root: string, sql: string): number {
  const f = path.join(root, 'hull.db');
  if (!fs.existsSync(f)) return 0;
  const db = new Database(f, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } catch {
    return 0; // no such table yet
  } finally {
    db.close();
  }
}

export function netState(root: string): NetState {
  const p = netPaths(root);
  const prefix = bridgePrefixOf(root);
  const bridges = fs.readdirSync('/sys/class/net').filter((n) => n.startsWith(prefix));
  const veths = bridges.flatMap((b) => {
    try {
      return fs.readdirSync(`/sys/class/net/${b}/brif`);
    } catch {
      return [];
    }
  });
  const nft = spawnSync('nft', ['-j', 'list', 'table', 'ip', nftTable(root)], { encoding: 'utf8' });
  const portRules: string[] = [];
  if (nft.status === 0) {
    for (const o of (JSON.parse(nft.stdout) as { nftables: { map?: { name: string; elem?: unknown[] } }[] }).nftables) {
      if (o.map && (o.map.name === 'ports' || o.map.name === 'ipports')) for (const e of o.map.elem ?? []) portRules.push(JSON.stringify(e));
    }
  }
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(p.netnsDir));
  return {
    netns: [...(fs.existsSync(p.netnsDir) ? fs.readdirSync(p.netnsDir) : []), ...mounts],
    bridges,
    veths,
    table: nft.status === 0,
    portRules,
    dnsFiles: fs.existsSync(p.dnsDir) ? fs.readdirSync(p.dnsDir).filter((f) => f !== 'aardvark.pid') : [],
    dnsServers: processesMentioning(p.dnsDir),
    addresses: rows(root, 'SELECT COUNT(*) AS n FROM endpoints WHERE ip IS NOT NULL'),
    ports: rows(root, 'SELECT COUNT(*) AS n FROM published_ports'),
    sandboxes: rows(root, 'SELECT COUNT(*) AS n FROM sandboxes'),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits (bounded) until nothing of the root's network is set up: no namespace, veth, port
 * rule, DNS entry or held address. Veths go with their namespace, which the kernel destroys
 * asynchronously; with `idle`, also until the idle cleanup removed the bridges and the table.
 */
export async function assertNoNetwork(root: string, o: { idle?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const end = Date.now() + (o.timeoutMs ?? 20_000);
  const clean = (s: NetState) =>
    s.netns.length === 0 && s.veths.length === 0 && s.portRules.length === 0 && s.dnsFiles.length === 0 && s.dnsServers.length === 0 &&
    s.addresses === 0 && s.ports === 0 && s.sandboxes === 0 && (!o.idle || (s.bridges.length === 0 && !s.table));
  let s = netState(root);
  while (!clean(s) && Date.now() < end) {
    await sleep(50);
    s = netState(root);
  }
  if (!clean(s)) throw new Error(`network state left for ${root}: ${JSON.stringify(s)}`);
}

/** A port on 127.0.0.1 that is free now (the kernel's pick). */
export function freePort(proto: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
      s.on('error', reject);
    } else {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    }
  });
}

/** `count` consecutive free TCP ports on 127.0.0.1 (their first). */
export async function freeRange(count: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = await freePort();
    if (base + count > 65535) continue;
    let ok = true;
    for (let p = base + 1; p < base + count && ok; p++) {
      ok = await new Promise<boolean>((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
      });
    }
    if (ok) return base;
  }
  throw new Error('no free port range');
}

/** GET http://host:port/path, retried while the server inside is still starting (bounded). */
export async function httpGet(host: string, port: number, timeoutMs = 30_000, pathname = '/'): Promise<string> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = http.get({ host, port, path: pathname, timeout: 3000, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    } catch (e) {
      last = e;
      await sleep(200);
    }
  }
  throw new Error(`GET http://${host}:${port}${pathname} failed: ${String(last)}`);
}

/** One UDP round trip to 127.0.0.1:port (the echo fixture answers), retried while it starts. */
export async function udpEcho(port: number, text: string, timeoutMs = 30_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const got = await new Promise<string | undefined>((resolve) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => (s.close(), resolve(undefined)), 500);
      s.on('message', (m) => (clearTimeout(t), s.close(), resolve(m.toString())));
      s.on('error', () => (clearTimeout(t), s.close(), resolve(undefined)));
      s.send(text, port, '127.0.0.1');
    });
    if (got !== undefined) return got;
  }
  throw new Error(`no UDP echo from 127.0.0.1:${port}`);
}

/** The static UDP echo server (test/fixtures/udp-echo.c), built once into build/test/. */
export function udpEchoBinaryDir(): string {
  return staticFixtureDir('udp-echo');
}

/** busybox httpd serving `text` on port 80 (its `wget -T` crashes in this busybox: tests use `timeout`). */
export function httpdScript(text: string): string {
  return `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`;
}

/**
 * Runs `create(octet)` with a third octet of 10.216.0.0/16 (outside hull's pool, so no other
 * root's default network is there) until it is not refused for an overlap: another root or
 * engine on this machine may hold any given subnet; an overlap answer means "try another".
 */
export function withFreeSubnet<T extends { code: number; stderr: string }>(create: (octet: number) => T): { octet: number; result: T } {
  const tried = new Set<number>();
  for (;;) {
    const octet = 1 + Math.floor(Math.random() * 254);
    if (tried.has(octet)) continue;
    tried.add(octet);
    const result = create(octet);
    if (result.code === 0 || !/overlaps/.test(result.stderr) || tried.size > 30) return { octet, result };
  }
}

/** `hull ARGS` in `root` that must succeed: its stdout, trimmed. */
export function hullOk(root: string, args: string[]): string {
  const r = hull(root, args);
  if (r.code !== 0) throw new Error(`hull ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * The end of a network test file: every container and user network of the root removed, then
 * nothing of its network left, idle bridges and the firewall table included.
 */
export async function removeAllNetworked(root: string): Promise<void> {
  const ids = hull(root, ['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) hull(root, ['rm', '-f', ...ids]);
  for (const n of hull(root, ['network', 'ls', '--format', '{{.Name}}']).stdout.split('\n').filter(Boolean)) {
    if (!['bridge', 'host', 'none'].includes(n)) hull(root, ['network', 'rm', n]);
  }
  await assertNoNetwork(root, { idle: true });
  for (let i = 0; i < 100 && processesMentioning(root).length; i++) await sleep(100);
}

/** Waits (inside the server's own instance, via exec) until its httpd on port 80 answers. */
export const WAIT_SERVING = ['timeout', '30', 'sh', '-c', 'until wget -q -O /dev/null http://127.0.0.1/ 2>/dev/null; do sleep 0.05; done'];
