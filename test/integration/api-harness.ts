/**
 * Harness for the API server tests: `hull --root R serve --socket S` as a child process, the
 * docker CLI pointed at it (DOCKER_HOST=unix://S, its own DOCKER_CONFIG), and a check that
 * nothing it started is left behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { HULL_BIN, importBusybox, makeTempRoot, mountsUnder, processesOfRoot, removeAllVolumes, type TempRoot } from '../helpers/hull.js';
import { removeAllNetworked } from '../helpers/net.js';

export function haveDocker(): boolean {
  return spawnSync('docker', ['--version'], { encoding: 'utf8' }).status === 0;
}

export interface Serve {
  socket: string;
  root: string;
  /** DOCKER_HOST and DOCKER_CONFIG for the docker CLI. */
  env: NodeJS.ProcessEnv;
  proc(): ChildProcess;
  /** Output the server printed so far. */
  log(): string;
  /** SIGTERM the server and wait for it to exit. */
  stop(): Promise<void>;
  /** Start it again on the same root and socket. */
  restart(): Promise<void>;
}

export function ping(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
    req.end();
  });
}

export async function startServe(root: string, opts: { env?: NodeJS.ProcessEnv; serveArgs?: string[] } = {}): Promise<Serve> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-api-'));
  const socket = path.join(dir, 'docker.sock');
  const cfg = path.join(dir, 'docker-config');
  fs.mkdirSync(cfg);
  let proc: ChildProcess;
  let out = '';
  const launch = async () => {
    proc = spawn(HULL_BIN, ['--root', root, 'serve', '--socket', socket, ...(opts.serveArgs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`hull serve exited early: ${out}`);
      if (await ping(socket)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`hull serve did not answer within 20 s: ${out}`);
  };
  await launch();
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };
  return {
    socket,
    root,
    env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' },
    proc: () => proc,
    log: () => out,
    stop: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stop();
      await launch();
    },
  };
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `docker ARGS` against the server, to completion. */
export function docker(s: Serve, args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Result {
  const r = spawnSync('docker', args, { env: s.env, input: opts.input, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

export function dockerAsync(s: Serve, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const c = spawn('docker', args, { env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}

/** Remove every container of the root through the API (docker rm -f), so no monitor is left. */
export function removeAll(s: Serve): void {
  const ids = docker(s, ['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) docker(s, ['rm', '-f', ...ids]);
}

/** conmon processes whose command line names `root` (left-behind monitors). */
export function monitorsOf(root: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.startsWith('/usr/bin/conmon') && cmd.includes(root)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** RSS of a process, bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Everything a stream delivers, once it ended. */
export function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

/** One HTTP request to the server's socket, collected. */
export function request(socket: string, method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: p, headers: { ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8').on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The usual file set-up, registered with node:test: a temp root with busybox and a server on it
 * before the file's tests, and after them every container removed, the server stopped, no
 * monitor left and the root gone. Nothing is started without the docker CLI (`have` false).
 */
export function serveForFile(
  prefix: string,
  opts: { env?: NodeJS.ProcessEnv; /** Runs once the server answers, inside the same before hook. */ ready?: (s: Serve, tmp: TempRoot) => void | Promise<void> } = {},
): { readonly have: boolean; readonly s: Serve; readonly tmp: TempRoot } {
  const have = haveDocker();
  let tmp: TempRoot | undefined;
  let s: Serve | undefined;
  before(async () => {
    if (!have) return;
    tmp = makeTempRoot(prefix);
    importBusybox(tmp.root);
    s = await startServe(tmp.root, { env: opts.env });
    await opts.ready?.(s, tmp);
  });
  after(async () => {
    if (!have || !s || !tmp) return;
    removeAll(s);
    await s.stop();
    assert.deepEqual(monitorsOf(tmp.root), [], 'no container monitor left running');
    tmp.cleanup();
  });
  return {
    have,
    get s() {
      return s!;
    },
    get tmp() {
      return tmp!;
    },
  };
}

/**
 * The end of a file that drove `hull serve`: stop it, remove the containers (and networks) the
 * tests left, optionally the volumes, assert no process (and optionally no mount) of the root is
 * left, and remove the root.
 */
export async function endServe(s: Serve, tmp: TempRoot, o: { removeVolumes?: boolean; checkMounts?: boolean } = {}): Promise<void> {
  await s.stop();
  await removeAllNetworked(tmp.root);
  if (o.removeVolumes) removeAllVolumes(tmp.root);
  assert.deepEqual(processesOfRoot(tmp.root), [], 'no process of the root left');
  if (o.checkMounts) assert.deepEqual(mountsUnder(tmp.root), [], 'no mount left under the root');
  tmp.cleanup();
}
