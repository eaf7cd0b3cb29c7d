/** /_ping, /version, /info, /auth: what a client asks before anything else. */
import { createHash } from 'node:crypto';
import os from 'node:os';
import fs from 'node:fs';
import { HullError } from '../errors.js';
import { version as hullVersion } from '../version.js';
import { type Ctx, type Handler, commonHeaders, resOf, sendJson } from './context.js';
import { jsonBody } from './params.js';
import type { Router } from './router.js';
import { HttpError } from './errors.js';
import { API_VERSION, MIN_API_VERSION } from './version.js';
import { VM_RUNTIME } from './create.js';

const goArch = (a: string) => (a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a);

async function ping(c: Ctx): Promise<void> {
  const res = resOf(c);
  res.writeHead(200, {
    ...commonHeaders(),
    'Builder-Version': '1',
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': '2',
  });
  res.end(c.method === 'HEAD' ? undefined : 'OK');
}

export function versionBody(): Record<string, unknown> {
  const v = hullVersion();
  const details = { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: goArch(os.arch()), KernelVersion: os.release(), NodeVersion: process.version };
  return {
    Platform: { Name: 'hull' },
    Components: [{ Name: 'Engine', Version: v, Details: details }],
    Version: v,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: `node ${process.version}`,
    Os: 'linux',
    Arch: goArch(os.arch()),
    KernelVersion: os.release(),
    BuildTime: '',
  };
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1]!;
  } catch {
    /* none */
  }
  return 'Linux';
}

async function info(c: Ctx): Promise<void> {
  const all = await c.engine.ps({ all: true });
  const running = all.filter((x) => x.State === 'running').length;
  const paused = all.filter((x) => x.State === 'paused').length;
  const which = (p: string) => ['/usr/bin', '/usr/sbin', '/bin', '/usr/local/bin'].map((d) => `${d}/${p}`).find((f) => fs.existsSync(f));
  const runtimes: Record<string, { path: string }> = {};
  for (const r of ['crun', 'runc', 'runsc']) {
    const p = which(r);
    if (p) runtimes[r] = { path: p };
  }
  const qemu = which('qemu-system-x86_64');
  if (qemu) runtimes[VM_RUNTIME] = { path: qemu };
  const cgroupV2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  sendJson(c, 200, {
    ID: createHash('sha256').update(`${os.hostname()}:${c.root}`).digest('hex').slice(0, 32),
    Containers: all.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: all.length - running - paused,
    Images: c.images.list().length,
    Driver: 'overlay',
    DriverStatus: [],
    Plugins: { Volume: [], Network: ['host', 'none'], Authorization: null, Log: ['k8s-file'] },
    MemoryLimit: true,
    SwapLimit: true,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: false,
    PidsLimit: true,
    IPv4Forwarding: false,
    BridgeNfIptables: false,
    BridgeNfIp6tables: false,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: 'k8s-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: cgroupV2 ? '2' : '1',
    NEventsListener: 0,
    KernelVersion: os.release(),
    OperatingSystem: osName(),
    OSVersion: '',
    OSType: 'linux',
    Architecture: os.arch() === 'x64' ? 'x86_64' : os.arch(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: null },
    NCPU: os.cpus().length,
    MemTotal: os.totalmem(),
    GenericResources: null,
    DockerRootDir: c.root,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: os.hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: hullVersion(),
    Runtimes: runtimes,
    DefaultRuntime: 'crun',
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: true,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '', Expected: '' },
    RuncCommit: { ID: '', Expected: '' },
    InitCommit: { ID: '', Expected: '' },
    SecurityOptions: ['name=seccomp,profile=builtin'],
    Warnings: [],
  });
}

async function auth(c: Ctx): Promise<void> {
  const body = await jsonBody<Record<string, unknown>>(c.req, {});
  const username = typeof body.username === 'string' ? body.username : '';
  const password = typeof body.password === 'string' ? body.password : '';
  const server = typeof body.serveraddress === 'string' ? body.serveraddress : '';
  if (!username || !password) throw new HttpError(400, 'username and password are required');
  const { normaliseRegistryArg } = await import('../registry/hosts.js');
  const { RegistryClient } = await import('../registry/client.js');
  const domain = normaliseRegistryArg(server.replace(/^https?:\/\//, '').replace(/\/.*$/, '') || undefined);
  const client = new RegistryClient({ domain, credentials: { username, password, source: 'api' } });
  try {
    await client.ping(true);
  } catch (e) {
    if (e instanceof HullError && e.code === 'PERMISSION_DENIED') throw new HttpError(401, e.message);
    throw e;
  }
  sendJson(c, 200, { Status: 'Login Succeeded', IdentityToken: '' });
}

/**
 * hull's own diagnostic route: the server's memory (after a GC when node runs with
 * --expose-gc) and what it holds in flight. Used by the leak test; not part of docker's API.
 */
async function hullState(c: Ctx): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const { execCounts } = await import('./exec.js');
  sendJson(c, 200, { memory: process.memoryUsage(), gcRan: gc !== undefined, state: c.state.counts(), execs: execCounts() });
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/_hull/state', hullState);
  r.add('GET', '/_ping', ping);
  r.add('HEAD', '/_ping', ping);
  r.add('GET', '/version', async (c) => sendJson(c, 200, versionBody()));
  r.add('GET', '/info', info);
  r.add('POST', '/auth', auth);
}
