/**
 * Docker's container-create body (swagger: ContainerConfig + HostConfig) -> hull's RunOptions.
 * Pure. Fields hull cannot honour are refused with a 400 naming the field when they carry a
 * non-default value (the docker CLI sends most fields at their zero value on every create);
 * fields that change nothing hull does (ExposedPorts, ConsoleSize, LogConfig json-file) are
 * accepted.
 */
import type { MountSpec, Ulimit } from '../runtime/types.js';
import type { RunOptions } from '../engine/options.js';
import { HttpError } from './errors.js';

/** The runtime name that selects the VM wall (`docker run --runtime hull-vm`). */
export const VM_RUNTIME = 'hull-vm';

export interface CreateRequest {
  opts: RunOptions;
  /** HostConfig.AutoRemove: the server removes the container after it exited. */
  autoRemove: boolean;
  /** What a later attach defaults to, and whether stdin is kept open. */
  attachStdin: boolean;
  stdinOnce: boolean;
  /** HostConfig.ConsoleSize [rows, cols] when given and non-zero. */
  consoleSize?: [number, number];
  /** Warnings docker returns with the id. */
  warnings: string[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(field: string, why: string): HttpError {
  return new HttpError(400, `invalid ${field}: ${why}`);
}

function unsupported(field: string, what?: string): HttpError {
  return new HttpError(400, `${field}${what ? ` (${what})` : ''} is not supported by hull`);
}

function strList(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(field, 'expected a list of strings');
  return v as string[];
}

function str(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(field, 'expected a string');
  return v;
}

function num(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isInteger(v)) throw bad(field, 'expected an integer');
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(field, 'expected true or false');
  return v;
}

const nonEmpty = (v: unknown): boolean =>
  v !== undefined && v !== null && v !== '' && v !== false && v !== 0 && !(Array.isArray(v) && v.length === 0) && !(isObj(v) && Object.keys(v).length === 0);

/** "src:dst[:ro|rw,...]" from HostConfig.Binds. */
export function parseBind(b: string): MountSpec {
  const parts = b.split(':');
  if (parts.length < 2 || parts.length > 3) throw bad('HostConfig.Binds', `${JSON.stringify(b)}: expected SOURCE:DEST[:OPTIONS]`);
  const [source, destination, mode = ''] = parts as [string, string, string?];
  if (!source.startsWith('/')) throw unsupported('HostConfig.Binds', `named volume ${JSON.stringify(source)}; bind an absolute host path`);
  if (!destination.startsWith('/')) throw bad('HostConfig.Binds', `${JSON.stringify(b)}: the destination must be an absolute path`);
  const opts = mode.split(',').filter(Boolean);
  for (const o of opts) if (!['ro', 'rw', 'z', 'Z', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'].includes(o)) throw bad('HostConfig.Binds', `unknown option ${o} in ${JSON.stringify(b)}`);
  return { type: 'bind', source, destination, readOnly: opts.includes('ro') };
}

function parseMounts(v: unknown): MountSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad('HostConfig.Mounts', 'expected a list');
  return v.map((m, i) => {
    if (!isObj(m)) throw bad(`HostConfig.Mounts[${i}]`, 'expected an object');
    const type = m.Type;
    const target = str(m.Target, `HostConfig.Mounts[${i}].Target`);
    if (!target || !target.startsWith('/')) throw bad(`HostConfig.Mounts[${i}].Target`, 'an absolute path is required');
    const readOnly = bool(m.ReadOnly, `HostConfig.Mounts[${i}].ReadOnly`);
    if (type === 'bind') {
      const source = str(m.Source, `HostConfig.Mounts[${i}].Source`);
      if (!source || !source.startsWith('/')) throw bad(`HostConfig.Mounts[${i}].Source`, 'an absolute host path is required');
      return { type: 'bind', source, destination: target, readOnly };
    }
    if (type === 'tmpfs') {
      const o = isObj(m.TmpfsOptions) ? m.TmpfsOptions : {};
      const options: string[] = [];
      const size = num(o.SizeBytes, `HostConfig.Mounts[${i}].TmpfsOptions.SizeBytes`);
      if (size) options.push(`size=${size}`);
      const mode = num(o.Mode, `HostConfig.Mounts[${i}].TmpfsOptions.Mode`);
      if (mode) options.push(`mode=${mode.toString(8)}`);
      return { type: 'tmpfs', destination: target, readOnly, options };
    }
    throw unsupported(`HostConfig.Mounts[${i}].Type`, `${JSON.stringify(type)}; bind and tmpfs are`);
  });
}

function parseUlimits(v: unknown): Ulimit[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad('HostConfig.Ulimits', 'expected a list');
  return v.map((u, i) => {
    if (!isObj(u) || typeof u.Name !== 'string') throw bad(`HostConfig.Ulimits[${i}]`, 'expected {Name, Soft, Hard}');
    return { name: u.Name, soft: num(u.Soft, `HostConfig.Ulimits[${i}].Soft`) ?? 0, hard: num(u.Hard, `HostConfig.Ulimits[${i}].Hard`) ?? 0 };
  });
}

/** The wall and OCI runtime a create asks for: HostConfig.Runtime 'hull-vm' or Isolation 'vm' -> VM. */
export function pickWall(runtime: string | undefined, isolation: string | undefined): { isolation: 'container' | 'vm'; runtime?: string } {
  const iso = (isolation ?? '').toLowerCase();
  if (!['', 'default', 'process', 'container', 'vm', 'hull-vm', 'hyperv'].includes(iso)) throw bad('HostConfig.Isolation', `${JSON.stringify(isolation)}: expected default, container or vm`);
  const vm = runtime === VM_RUNTIME || iso === 'vm' || iso === 'hull-vm' || iso === 'hyperv';
  if (vm) {
    if (runtime && runtime !== VM_RUNTIME && runtime !== 'runc') throw bad('HostConfig.Runtime', `${runtime} cannot run a VM; use ${VM_RUNTIME}`);
    return { isolation: 'vm' };
  }
  if (!runtime) return { isolation: 'container' };
  if (!['crun', 'runc', 'runsc'].includes(runtime)) throw bad('HostConfig.Runtime', `unknown runtime ${JSON.stringify(runtime)}: crun, runc, runsc or ${VM_RUNTIME}`);
  return { isolation: 'container', runtime };
}

export function parseCreate(body: Obj, q: { name?: string; platform?: string }): CreateRequest {
  const image = str(body.Image, 'Image');
  if (!image) throw bad('Image', 'an image is required');
  const hc = body.HostConfig === undefined || body.HostConfig === null ? {} : body.HostConfig;
  if (!isObj(hc)) throw bad('HostConfig', 'expected an object');
  const warnings: string[] = [];

  // What hull cannot do, refused rather than ignored.
  const refuse: [string, unknown][] = [
    ['HostConfig.Privileged', hc.Privileged],
    ['HostConfig.PortBindings', hc.PortBindings],
    ['HostConfig.PublishAllPorts', hc.PublishAllPorts],
    ['HostConfig.Devices', hc.Devices],
    ['HostConfig.VolumesFrom', hc.VolumesFrom],
    ['HostConfig.Links', hc.Links],
    ['HostConfig.Dns', hc.Dns],
    ['HostConfig.ExtraHosts', hc.ExtraHosts],
    ['HostConfig.CgroupParent', hc.CgroupParent],
    ['HostConfig.PidMode', hc.PidMode === 'private' ? '' : hc.PidMode],
    ['HostConfig.IpcMode', ['private', 'shareable', 'none'].includes(String(hc.IpcMode)) ? '' : hc.IpcMode],
    ['HostConfig.UsernsMode', hc.UsernsMode],
    ['Volumes', body.Volumes],
    ['Labels', body.Labels],
  ];
  for (const [field, v] of refuse) if (nonEmpty(v)) throw unsupported(field);
  const health = body.Healthcheck;
  if (isObj(health) && Array.isArray(health.Test) && health.Test.length > 0 && health.Test[0] !== 'NONE') throw unsupported('Healthcheck');
  const restart = hc.RestartPolicy;
  if (isObj(restart) && restart.Name !== undefined && restart.Name !== '' && restart.Name !== 'no') throw unsupported('HostConfig.RestartPolicy', `${String(restart.Name)}`);
  const logType = isObj(hc.LogConfig) ? hc.LogConfig.Type : undefined;
  if (logType !== undefined && logType !== '' && logType !== 'json-file' && logType !== 'k8s-file' && logType !== 'local') throw unsupported('HostConfig.LogConfig.Type', String(logType));

  let network: 'none' | 'host' | undefined;
  const nm = str(hc.NetworkMode, 'HostConfig.NetworkMode') ?? '';
  if (nm === 'host') network = 'host';
  else if (nm === 'none' || nm === '' || nm === 'default' || nm === 'bridge') network = 'none';
  else throw unsupported('HostConfig.NetworkMode', `network ${JSON.stringify(nm)}; none and host are`);
  if (bool(body.NetworkDisabled, 'NetworkDisabled')) network = 'none';

  const { isolation, runtime } = pickWall(str(hc.Runtime, 'HostConfig.Runtime'), str(hc.Isolation, 'HostConfig.Isolation'));

  let nanoCpus = num(hc.NanoCpus, 'HostConfig.NanoCpus') || undefined;
  const quota = num(hc.CpuQuota, 'HostConfig.CpuQuota');
  if (!nanoCpus && quota && quota > 0) {
    const period = num(hc.CpuPeriod, 'HostConfig.CpuPeriod') || 100_000;
    nanoCpus = Math.round((quota / period) * 1e9);
  }
  const memSwap = num(hc.MemorySwap, 'HostConfig.MemorySwap');
  const pids = num(hc.PidsLimit, 'HostConfig.PidsLimit');

  const mounts = [...(strList(hc.Binds, 'HostConfig.Binds') ?? []).map(parseBind), ...parseMounts(hc.Mounts)];
  if (hc.Tmpfs !== undefined && hc.Tmpfs !== null) {
    if (!isObj(hc.Tmpfs)) throw bad('HostConfig.Tmpfs', 'expected an object of path -> options');
    for (const [dest, o] of Object.entries(hc.Tmpfs)) {
      if (!dest.startsWith('/')) throw bad('HostConfig.Tmpfs', `${dest}: an absolute path is required`);
      const options = String(o ?? '').split(',').filter(Boolean);
      mounts.push({ type: 'tmpfs', destination: dest, readOnly: options.includes('ro'), options: options.filter((x) => x !== 'ro' && x !== 'rw') });
    }
  }

  let entrypoint: string | undefined;
  let cmd = strList(body.Cmd, 'Cmd');
  const ep = strList(body.Entrypoint, 'Entrypoint');
  if (ep !== undefined) {
    if (ep.length === 0 || (ep.length === 1 && ep[0] === '')) entrypoint = '';
    else {
      entrypoint = ep[0]!;
      cmd = [...ep.slice(1), ...(cmd ?? [])];
    }
  }

  const name = q.name === '' ? undefined : q.name;
  const opts: RunOptions = {
    image,
    cmd: cmd && cmd.length > 0 ? cmd : undefined,
    entrypoint,
    name: name?.startsWith('/') ? name.slice(1) : name,
    env: strList(body.Env, 'Env'),
    workdir: str(body.WorkingDir, 'WorkingDir') || undefined,
    user: str(body.User, 'User') || undefined,
    memoryBytes: num(hc.Memory, 'HostConfig.Memory') || undefined,
    memorySwapBytes: memSwap === 0 || memSwap === undefined ? undefined : memSwap,
    nanoCpus,
    pidsLimit: pids === 0 || pids === undefined ? undefined : pids,
    readOnly: bool(hc.ReadonlyRootfs, 'HostConfig.ReadonlyRootfs') || undefined,
    mounts: mounts.length ? mounts : undefined,
    network,
    hostname: str(body.Hostname, 'Hostname') || undefined,
    capAdd: strList(hc.CapAdd, 'HostConfig.CapAdd'),
    capDrop: strList(hc.CapDrop, 'HostConfig.CapDrop'),
    securityOpt: strList(hc.SecurityOpt, 'HostConfig.SecurityOpt'),
    ulimits: parseUlimits(hc.Ulimits),
    init: hc.Init === true || undefined,
    interactive: bool(body.OpenStdin, 'OpenStdin') || undefined,
    tty: bool(body.Tty, 'Tty') || undefined,
    runtime,
    isolation,
    platform: q.platform || undefined,
  };
  for (const k of Object.keys(opts) as (keyof RunOptions)[]) if (opts[k] === undefined) delete opts[k];
  let consoleSize: [number, number] | undefined;
  if (hc.ConsoleSize !== undefined && hc.ConsoleSize !== null) {
    const cs = hc.ConsoleSize;
    if (!Array.isArray(cs) || cs.length !== 2 || cs.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0)) throw bad('HostConfig.ConsoleSize', 'expected [rows, cols]');
    if (cs[0] > 0 && cs[1] > 0) consoleSize = [cs[0], cs[1]];
  }
  return {
    opts,
    consoleSize,
    autoRemove: bool(hc.AutoRemove, 'HostConfig.AutoRemove'),
    attachStdin: bool(body.AttachStdin, 'AttachStdin'),
    stdinOnce: bool(body.StdinOnce, 'StdinOnce'),
    warnings,
  };
}
