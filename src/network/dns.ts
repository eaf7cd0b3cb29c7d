/**
 * Names on user networks: podman's aardvark-dns (Debian, /usr/lib/podman), driven directly. One
 * server per hull root listens on the gateway of each of the root's networks that has names (like
 * docker's 127.0.0.11, at an address every container of the network reaches, VMs included) and
 * answers a query by the networks of the container that asked (its source address), so names do
 * not cross networks. hull writes one file per network (`<gateway>` then one line per container:
 * `<id> <ipv4> <ipv6> <name,alias,...> [<dns servers>]`), SIGHUPs the server to reload, starts it
 * when it is not running, and lets it stop by itself when no file is left (aardvark exits on an
 * empty configuration). A reload is confirmed, not assumed: each file carries a probe name for
 * the gateway itself, fresh on every write, and hull asks for it until it resolves.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';

export const AARDVARK_CANDIDATES = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'];

export interface DnsEntry {
  /** Container id (64 hex). */
  id: string;
  ip: string;
  /** Name, aliases, short id. */
  names: string[];
  /** --dns servers queries this container's names cannot answer go to (else the host's). */
  servers?: string[];
}

export interface DnsNetwork {
  /** The file name: the network id. */
  id: string;
  gateway: string;
  entries: DnsEntry[];
}

const NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/;

/** The aardvark-dns file of one network (pure). `probe` is the name the gateway answers to. */
export function renderDnsFile(n: DnsNetwork, probe: string): string {
  const lines = [n.gateway, `hull-probe-${n.id.slice(0, 12)} ${n.gateway}  ${probe}`];
  for (const e of n.entries) {
    const names = [...new Set(e.names.map((x) => x.toLowerCase()))].filter((x) => NAME.test(x));
    if (names.length === 0) continue;
    lines.push(`${e.id} ${e.ip}  ${names.join(',')}${e.servers?.length ? ` ${e.servers.join(',')}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

export function aardvarkBinary(): string {
  const p = AARDVARK_CANDIDATES.find((c) => fs.existsSync(c));
  if (!p) throw new HullError('UNAVAILABLE', 'aardvark-dns not found: names on user networks need it', { hint: 'apt-get install aardvark-dns' });
  return p;
}

/** A DNS query for an A record (pure). */
export function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2); // recursion desired
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** Whether `msg` answers query `id` with at least one record and no error (pure). */
export function dnsAnswered(msg: Buffer, id: number): boolean {
  return msg.length >= 12 && msg.readUInt16BE(0) === id && (msg.readUInt16BE(2) & 0x800f) === 0x8000 && msg.readUInt16BE(6) > 0;
}

/** Asks `server`:53 for `name` once; resolves whether it answered within `ms`. */
function askOnce(server: string, name: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const id = crypto.randomInt(1, 65535);
    const done = (v: boolean) => {
      clearTimeout(t);
      s.close();
      resolve(v);
    };
    const t = setTimeout(() => done(false), ms);
    s.on('message', (m) => dnsAnswered(m, id) && done(true));
    s.on('error', () => done(false));
    s.send(dnsQuery(id, name), 53, server);
  });
}

/** The pid of the root's running server, from its pid file (and /proc, so a reused pid is not taken for it). */
function serverPid(dir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'aardvark.pid'), 'utf8').trim());
    if (!(pid > 0)) return undefined;
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(dir) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Servers of this config directory still running (a stopping one may hold the ports a moment). */
function serversOf(dir: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('aardvark-dns') && cmd.includes(dir) && !fs.readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z')) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startServer(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // aardvark forks: the parent exits once the child wrote its pid file
    const c = spawn(aardvarkBinary(), ['--config', dir, '-p', '53', 'run'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot start aardvark-dns: ${e.message}`, { cause: e })));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('UNAVAILABLE', `aardvark-dns did not start: ${err.trim() || `exit ${code}`}`))));
  });
}

/**
 * Makes the root's DNS server serve exactly `networks` (those with names and at least one
 * container set up): writes their files, removes the others, reloads or starts the server, and
 * waits until every network in `confirm` (ids) answers its new probe name.
 */
export async function applyDns(dir: string, networks: DnsNetwork[], confirm: string[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const want = new Map(networks.map((n) => [n.id, n]));
  const probes = new Map<string, string>();
  for (const f of fs.readdirSync(dir)) {
    if (f === 'aardvark.pid' || want.has(f)) continue;
    fs.rmSync(path.join(dir, f), { force: true });
  }
  for (const n of networks) {
    const probe = `hull-probe-${crypto.randomBytes(6).toString('hex')}`;
    probes.set(n.id, probe);
    const tmp = path.join(dir, `.${n.id}.tmp`);
    fs.writeFileSync(tmp, renderDnsFile(n, probe));
    fs.renameSync(tmp, path.join(dir, n.id));
  }
  const pid = serverPid(dir);
  if (pid) process.kill(pid, 'SIGHUP');
  if (networks.length === 0) return; // the server exits by itself on an empty configuration
  if (!pid) {
    // one that is stopping may still hold the gateway addresses' port 53
    for (let i = 0; i < 200 && serversOf(dir).length > 0; i++) await sleep(10);
    await startServer(dir);
  }
  for (const id of confirm) {
    const n = want.get(id);
    if (!n) continue;
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) ok = await askOnce(n.gateway, probes.get(id)!, 50);
    if (!ok) throw new HullError('UNAVAILABLE', `the DNS server (aardvark-dns) does not answer on ${n.gateway}:53`);
  }
}

/** Stops the root's server (idempotent): when its files are gone but it still runs. */
export function stopDns(dir: string): void {
  for (const pid of serversOf(dir)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}
