/**
 * Docker's container-create body (swagger: ContainerConfig + HostConfig) -> hull's RunOptions.
 * Pure. Fields hull cannot honour are refused with a 400 naming the field when they carry a
 * non-default value (the docker CLI sends most fields at their zero value on every create);
 * fields that change nothing hull does (ConsoleSize, LogConfig json-file) are accepted.
 */
import type { MountSpec, Ulimit } from '../runtime/types.js';
import { PRIVILEGED_WARNING, type RunOptions } from '../engine/options.js';
import { HttpError } from './errors.js';
import { HullError } from '../errors.js';
import { parseVolumeSpec } from '../volumes/syntax.js';

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

function strMap(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw bad(field, 'expected an object of strings');
  return v as Record<string, string>;
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

/** "src:dst[:ro|rw,...]" from HostConfig.Binds: a bind of an absolute host path, or a volume. */
export function parseBind(b: string): MountSpec {
  return volumeSpec(b, 'HostConfig.Binds', false);
}

/** The shared -v syntax, its refusals as this module's 400s. */
function volumeSpec(v: string, field: string, anonymous = true): MountSpec {
  try {
    return parseVolumeSpec(v, field, { anonymous });
  } catch (e) {
    if (e instanceof HullError && e.code === 'INVALID_ARGUMENT') throw new HttpError(400, e.message);
    throw e;
  }
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
    if (type === 'volume') {
      const source = str(m.Source, `HostConfig.Mounts[${i}].Source`) || undefined;
      const vo = isObj(m.VolumeOptions) ? m.VolumeOptions : {};
      const driver = isObj(vo.DriverConfig) ? vo.DriverConfig : {};
      if (nonEmpty(driver.Name) && driver.Name !== 'local') throw unsupported(`HostConfig.Mounts[${i}].VolumeOptions.DriverConfig.Name`, String(driver.Name));
      if (nonEmpty(driver.Options)) throw unsupported(`HostConfig.Mounts[${i}].VolumeOptions.DriverConfig.Options`);
      if (nonEmpty(vo.Subpath)) throw unsupported(`HostConfig.Mounts[${i}].VolumeOptions.Subpath`);
      const spec = volumeSpec(source ? `${source}:${target}` : target, `HostConfig.Mounts[${i}]`);
      return { ...spec, readOnly, ...(bool(vo.NoCopy, `HostConfig.Mounts[${i}].VolumeOptions.NoCopy`) ? { noCopy: true } : {}) };
    }
    throw unsupported(`HostConfig.Mounts[${i}].Type`, `${JSON.stringify(type)}; bind, volume and tmpfs are`);
  });
}

/** HostConfig.Devices [{PathOnHost, PathInContainer, CgroupPermissions}] -> --device strings. */
function parseDevices(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad('HostConfig.Devices', 'expected a list');
  const out = v.map((d, i) => {
    const f = `HostConfig.Devices[${i}]`;
    if (!isObj(d)) throw bad(f, 'expected an object');
    const host = str(d.PathOnHost, `${f}.PathOnHost`);
    if (!host) throw bad(`${f}.PathOnHost`, 'a host device path is required');
    const ctr = str(d.PathInContainer, `${f}.PathInContainer`) || host;
    const perms = str(d.CgroupPermissions, `${f}.CgroupPermissions`) || 'rwm';
    return `${host}:${ctr}:${perms}`;
  });
  return out.length ? out : undefined;
}

/** HostConfig.Sysctls {KEY: VALUE}. */
function parseSysctls(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw bad('HostConfig.Sysctls', 'expected an object of name -> string value');
  return Object.keys(v).length ? (v as Record<string, string>) : undefined;
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
    ['HostConfig.DeviceCgroupRules', hc.DeviceCgroupRules],
    ['HostConfig.DeviceRequests', hc.DeviceRequests],
    ['HostConfig.VolumesFrom', hc.VolumesFrom],
    ['HostConfig.Links', hc.Links],
    ['HostConfig.CgroupParent', hc.CgroupParent],
    ['HostConfig.PidMode', hc.PidMode === 'private' ? '' : hc.PidMode],
    ['HostConfig.IpcMode', ['private', 'shareable', 'none'].includes(String(hc.IpcMode)) ? '' : hc.IpcMode],
  ];
  for (const [field, v] of refuse) if (nonEmpty(v)) throw unsupported(field);
  const health = body.Healthcheck;
  if (isObj(health) && Array.isArray(health.Test) && health.Test.length > 0 && health.Test[0] !== 'NONE') throw unsupported('Healthcheck');
  const restart = hc.RestartPolicy;
  if (isObj(restart) && restart.Name !== undefined && restart.Name !== '' && restart.Name !== 'no') throw unsupported('HostConfig.RestartPolicy', `${String(restart.Name)}`);
  const logType = isObj(hc.LogConfig) ? hc.LogConfig.Type : undefined;
  if (logType !== undefined && logType !== '' && logType !== 'json-file' && logType !== 'k8s-file' && logType !== 'local') throw unsupported('HostConfig.LogConfig.Type', String(logType));

  const net = parseNetworking(body, hc);

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
  // Config.Volumes: anonymous volumes (docker run -v /path), unless a bind or volume covers the path
  if (body.Volumes !== undefined && body.Volumes !== null) {
    if (!isObj(body.Volumes)) throw bad('Volumes', 'expected an object of path -> {}');
    for (const dest of Object.keys(body.Volumes)) {
      const clean = dest.replace(/\/+$/, '') || '/';
      if (mounts.some((m) => m.destination.replace(/\/+$/, '') === clean)) continue;
      mounts.push(volumeSpec(dest, 'Volumes'));
    }
  }
  const labels = strMap(body.Labels, 'Labels');
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

  const privileged = bool(hc.Privileged, 'HostConfig.Privileged');
  if (privileged) warnings.push(PRIVILEGED_WARNING);
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
    ...net,
    hostname: str(body.Hostname, 'Hostname') || undefined,
    capAdd: strList(hc.CapAdd, 'HostConfig.CapAdd'),
    capDrop: strList(hc.CapDrop, 'HostConfig.CapDrop'),
    securityOpt: strList(hc.SecurityOpt, 'HostConfig.SecurityOpt'),
    privileged: privileged || undefined,
    devices: parseDevices(hc.Devices),
    groupAdd: strList(hc.GroupAdd, 'HostConfig.GroupAdd'),
    sysctls: parseSysctls(hc.Sysctls),
    userns: str(hc.UsernsMode, 'HostConfig.UsernsMode') || undefined,
    ulimits: parseUlimits(hc.Ulimits),
    init: hc.Init === true || undefined,
    interactive: bool(body.OpenStdin, 'OpenStdin') || undefined,
    stdinOnce: bool(body.StdinOnce, 'StdinOnce') || undefined,
    tty: bool(body.Tty, 'Tty') || undefined,
    labels: labels && Object.keys(labels).length ? labels : undefined,
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

/** docker's PortBindings ({"80/tcp": [{HostIp, HostPort}]}) as -p values (pure). */
export function publishFromBindings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!isObj(v)) throw bad('HostConfig.PortBindings', 'expected an object of "port/proto" -> [{HostIp, HostPort}]');
  const out: string[] = [];
  for (const [key, list] of Object.entries(v)) {
    const m = /^(\d+(?:-\d+)?)(?:\/(tcp|udp|sctp))?$/.exec(key);
    if (!m) throw bad('HostConfig.PortBindings', `${JSON.stringify(key)}: expected PORT[/PROTO]`);
    if (m[2] === 'sctp') throw unsupported('HostConfig.PortBindings', `sctp port ${key}`);
    const proto = m[2] ?? 'tcp';
    if (list === null) continue;
    if (!Array.isArray(list)) throw bad(`HostConfig.PortBindings[${key}]`, 'expected a list');
    for (const b of list.length ? list : [{}]) {
      if (!isObj(b)) throw bad(`HostConfig.PortBindings[${key}]`, 'expected {HostIp, HostPort}');
      const ip = str(b.HostIp, `HostConfig.PortBindings[${key}].HostIp`) ?? '';
      const port = str(b.HostPort, `HostConfig.PortBindings[${key}].HostPort`) ?? '';
      if (ip.includes(':')) throw unsupported('HostConfig.PortBindings', `IPv6 host address ${ip}`);
      out.push(ip ? `${ip}:${port}:${m[1]}/${proto}` : port ? `${port}:${m[1]}/${proto}` : `${m[1]}/${proto}`);
    }
  }
  return out;
}

/** The network part of a create body (pure): NetworkMode, EndpointsConfig, ports, DNS, hosts. */
export function parseNetworking(body: Obj, hc: Obj): Partial<RunOptions> {
  const o: Partial<RunOptions> = {};
  let nm = str(hc.NetworkMode, 'HostConfig.NetworkMode') ?? '';
  if (nm === '' || nm === 'default') nm = 'bridge';
  if (bool(body.NetworkDisabled, 'NetworkDisabled')) nm = 'none';
  o.network = nm;
  const nc = body.NetworkingConfig;
  const eps = isObj(nc) ? nc.EndpointsConfig : undefined;
  if (eps !== undefined && eps !== null && !isObj(eps)) throw bad('NetworkingConfig.EndpointsConfig', 'expected an object of network -> endpoint');
  for (const [name, e] of Object.entries((eps as Obj | undefined) ?? {})) {
    if (e !== null && !isObj(e)) throw bad(`NetworkingConfig.EndpointsConfig[${name}]`, 'expected an object');
    const x = (e ?? {}) as Obj;
    const ipam = isObj(x.IPAMConfig) ? x.IPAMConfig : {};
    if (nonEmpty(ipam.IPv6Address)) throw unsupported(`NetworkingConfig.EndpointsConfig[${name}].IPAMConfig.IPv6Address`);
    if (nonEmpty(x.Links)) throw unsupported(`NetworkingConfig.EndpointsConfig[${name}].Links`);
    const cfg = {
      aliases: strList(x.Aliases, `NetworkingConfig.EndpointsConfig[${name}].Aliases`),
      ip: str(ipam.IPv4Address, `NetworkingConfig.EndpointsConfig[${name}].IPAMConfig.IPv4Address`) || undefined,
      mac: str(x.MacAddress, `NetworkingConfig.EndpointsConfig[${name}].MacAddress`) || undefined,
    };
    const main = name === nm || (nm === 'bridge' && name === 'default');
    if (main) {
      if (cfg.aliases?.length) o.networkAliases = cfg.aliases;
      if (cfg.ip) o.ip = cfg.ip;
      if (cfg.mac) o.macAddress = cfg.mac;
    } else {
      (o.endpoints ??= {})[name] = Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined));
    }
  }
  const mac = str(body.MacAddress, 'MacAddress');
  if (mac) o.macAddress ??= mac;
  const publish = publishFromBindings(hc.PortBindings);
  if (publish.length) o.publish = publish;
  if (bool(hc.PublishAllPorts, 'HostConfig.PublishAllPorts')) o.publishAll = true;
  if (body.ExposedPorts !== undefined && body.ExposedPorts !== null) {
    if (!isObj(body.ExposedPorts)) throw bad('ExposedPorts', 'expected an object of "port/proto" -> {}');
    const keys = Object.keys(body.ExposedPorts);
    if (keys.length) o.expose = keys;
  }
  const dns = strList(hc.Dns, 'HostConfig.Dns');
  if (dns?.length) o.dns = dns;
  const search = strList(hc.DnsSearch, 'HostConfig.DnsSearch');
  if (search?.length) o.dnsSearch = search;
  const dopts = strList(hc.DnsOptions, 'HostConfig.DnsOptions');
  if (dopts?.length) o.dnsOptions = dopts;
  const hosts = strList(hc.ExtraHosts, 'HostConfig.ExtraHosts');
  if (hosts?.length) o.extraHosts = hosts;
  return o;
}
