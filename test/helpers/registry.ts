/**
 * Test helper: Debian's real `docker-registry` (distribution 2.8) on 127.0.0.1 and a free port,
 * with a config written here: filesystem storage in a temp dir, an optional htpasswd file for
 * Basic auth, or token auth against the small token server below. Access log lines are kept so
 * tests can count requests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export function haveRegistry(): boolean {
  return fs.existsSync(REGISTRY_BIN);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  /** PEM file of the certificate(s) whose keys sign tokens. */
  rootCertBundle: string;
}

export interface RegistryOptions {
  /** Require Basic auth for this user. */
  basic?: { user: string; password: string };
  /** Require Bearer tokens from a token server. */
  token?: TokenAuthConfig;
  /** Serve TLS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
}

export interface TestRegistry {
  /** 127.0.0.1:PORT, the domain to put in references. */
  host: string;
  port: number;
  dir: string;
  /** Where the registry keeps blobs: <storage>/docker/registry/v2/blobs/sha256/<2>/<hex>/data. */
  storage: string;
  /** The running process's pid. */
  pid(): number;
  /** Access-log lines so far (combined log format). */
  accessLog(): string[];
  /** The access log parsed: method, path and status of each completed request. */
  requests(): Array<{ method: string; path: string; status: number }>;
  /** How many requests matched `method` and a path containing `pathPart`. */
  countRequests(method: string, pathPart: string): number;
  /** The file of a blob in the registry's storage. */
  blobFile(digest: string): string;
  /** SIGKILL the registry (storage is kept). */
  kill(): Promise<void>;
  /** Start it again on the same port and storage. */
  restart(): Promise<void>;
  /** Stop it and remove its directory. */
  stop(): Promise<void>;
}

function configYaml(dir: string, port: number, opts: RegistryOptions): string {
  let auth = '';
  if (opts.basic) {
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, `${opts.basic.user}:${bcrypt.hashSync(opts.basic.password, 4)}\n`, { mode: 0o600 });
    auth = `auth:\n  htpasswd:\n    realm: hull-test\n    path: ${file}\n`;
  } else if (opts.token) {
    const t = opts.token;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.rootCertBundle}\n`;
  }
  return `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'storage')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: hull-test-secret-${crypto.randomBytes(8).toString('hex')}
${opts.tls ? `  tls:\n    certificate: ${opts.tls.cert}\n    key: ${opts.tls.key}\n` : ''}${auth}`;
}

async function waitReady(port: number, proc: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`docker-registry exited early: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const r = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      r.on('error', () => resolve(false));
      r.setTimeout(1000, () => r.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('docker-registry did not answer within 20 s');
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-registry-'));
  const port = await freePort();
  const cfg = path.join(dir, 'config.yml');
  fs.writeFileSync(cfg, configYaml(dir, port, opts));
  const logFile = path.join(dir, 'registry.log');
  let proc: ChildProcess;
  const launch = async () => {
    const fd = fs.openSync(logFile, 'a');
    proc = spawn(REGISTRY_BIN, ['serve', cfg], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    await waitReady(port, proc, logFile);
  };
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  const killNow = async () => {
    if (exited()) return;
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await done;
  };
  await launch();
  const storage = path.join(dir, 'storage');
  const accessLog = () => fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => /"[A-Z]+ \/v2\//.test(l));
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    storage,
    pid: () => proc.pid!,
    accessLog,
    requests() {
      return accessLog().flatMap((l) => {
        const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(l);
        return m ? [{ method: m[1]!, path: m[2]!, status: Number(m[3]) }] : [];
      });
    },
    countRequests(method, pathPart) {
      return accessLog().filter((l) => {
        const m = /"([A-Z]+) (\S+) HTTP/.exec(l);
        return m !== null && m[1] === method && m[2]!.includes(pathPart);
      }).length;
    },
    blobFile(digest) {
      const hex = digest.replace(/^sha256:/, '');
      return path.join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    kill: killNow,
    restart: launch,
    async stop() {
      await killNow();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A small token server for the Bearer flow (distribution's token spec): GET /token?service=&scope=
 * with optional Basic credentials returns a JWT signed RS256 by a key whose self-signed
 * certificate (made with openssl) the registry trusts, carried in the x5c header. Grants every
 * scope asked for to the one user; anonymous callers get pull only when `anonymousPull`.
 */
export interface TokenServer {
  realm: string;
  config: TokenAuthConfig;
  /** Requests the token server answered, with the Basic user (or '') and scopes asked. */
  requests: Array<{ user: string; scopes: string[]; status: number }>;
  close(): Promise<void>;
}

export async function startTokenServer(opts: { user: string; password: string; anonymousPull?: boolean; expiresIn?: number }): Promise<TokenServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-token-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=hull-test-token'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
  const certDer = new crypto.X509Certificate(fs.readFileSync(certFile)).raw.toString('base64');
  const service = 'hull-test-registry';
  const issuer = 'hull-test-issuer';
  const requests: TokenServer['requests'] = [];
  const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let user = '';
    const h = req.headers.authorization;
    if (h?.startsWith('Basic ')) {
      const plain = Buffer.from(h.slice(6), 'base64').toString('utf8');
      const i = plain.indexOf(':');
      if (plain.slice(0, i) !== opts.user || plain.slice(i + 1) !== opts.password) {
        requests.push({ user: plain.slice(0, i), scopes, status: 401 });
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      user = opts.user;
    }
    if (u.pathname !== '/token' || u.searchParams.get('service') !== service) {
      requests.push({ user, scopes, status: 400 });
      res.writeHead(400).end('{"details":"bad service"}');
      return;
    }
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(':') as [string, string, string];
      const granted = (actions ?? '').split(',').filter((a) => user !== '' || (opts.anonymousPull && a === 'pull'));
      return { type, name, actions: granted };
    });
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = opts.expiresIn ?? 300;
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = { iss: issuer, sub: user, aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: crypto.randomBytes(8).toString('hex'), access };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(signing), key);
    const token = `${signing}.${b64url(sig)}`;
    requests.push({ user, scopes, status: 200 });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const realm = `http://127.0.0.1:${port}/token`;
  return {
    realm,
    config: { realm, service, issuer, rootCertBundle: certFile },
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Build a small OCI image directly into a content store (no hull image code involved): each
 * layer a gzip'd tar of the given files, or of `randomBytes` bytes of random data (for big
 * layers). Returns the manifest digest and its parts.
 */
export interface TestLayer {
  files?: Record<string, string>;
  /** A single file /blob.bin of this many random bytes (stored uncompressed: application/vnd.oci.image.layer.v1.tar). */
  randomBytes?: number;
}

export async function buildTestImage(
  content: import('../../src/content/store.js').ContentStore,
  opts: { layers: TestLayer[]; architecture?: string; os?: string; variant?: string; /** Give this layer a wrong diff id in the config (a broken image). */ badDiffId?: number },
): Promise<{ manifestDigest: string; manifestSize: number; configDigest: string; layerDigests: string[]; layerSizes: number[] }> {
  const tarStream = await import('tar-stream');
  const zlib = await import('node:zlib');
  const layers: Array<{ digest: string; size: number; diffId: string; mediaType: string }> = [];
  for (const l of opts.layers) {
    const pack = tarStream.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    const ended = new Promise<void>((r) => pack.on('end', () => r()));
    if (l.randomBytes !== undefined) {
      pack.entry({ name: 'blob.bin', size: l.randomBytes, mode: 0o644, mtime: new Date(0) }, crypto.randomBytes(l.randomBytes));
    }
    for (const [name, text] of Object.entries(l.files ?? {})) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, text);
    pack.finalize();
    await ended;
    const tar = Buffer.concat(chunks);
    const diffId = `sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`;
    const gz = l.randomBytes !== undefined ? tar : zlib.gzipSync(tar);
    const mediaType = l.randomBytes !== undefined ? 'application/vnd.oci.image.layer.v1.tar' : 'application/vnd.oci.image.layer.v1.tar+gzip';
    const { digest, size } = content.putBuffer(gz);
    layers.push({ digest, size, diffId, mediaType });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: opts.architecture ?? 'amd64',
      os: opts.os ?? 'linux',
      ...(opts.variant ? { variant: opts.variant } : {}),
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l, i) => (i === opts.badDiffId ? `sha256:${'0'.repeat(64)}` : l.diffId)) },
    }),
  );
  const cfg = content.putBuffer(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: cfg.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const m = content.putBuffer(manifest);
  return { manifestDigest: m.digest, manifestSize: m.size, configDigest: cfg.digest, layerDigests: layers.map((l) => l.digest), layerSizes: layers.map((l) => l.size) };
}

/**
 * A TCP proxy in front of a registry that limits how fast each connection's responses flow
 * (bytes per second), so a test can act while a download is under way. When the registry goes
 * away the proxied connections break, as they would without the proxy.
 */
export async function startThrottle(targetPort: number, bytesPerSecond: number): Promise<{ host: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(up);
    client.pipe(up);
    up.on('data', (chunk: Buffer) => {
      client.write(chunk);
      up.pause();
      setTimeout(() => up.resume(), (chunk.length / bytesPerSecond) * 1000);
    });
    const end = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    up.on('close', end);
    up.on('error', end);
    client.on('close', end);
    client.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
