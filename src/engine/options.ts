/**
 * RunOptions: what a caller (CLI, API server, library user) asks of `run`/`create`, with units
 * explicit; validated here, where they enter the engine. buildInstanceSpec turns them plus the
 * image config into the wall-neutral InstanceSpec (pure).
 */
import { invalid } from '../errors.js';
import type { ImageConfig } from '../oci/types.js';
import type { InstanceSpec, MountSpec, Ulimit, Wall } from '../runtime/types.js';
import { normalizeCap } from '../runtime/container/caps.js';
import { parseDockerProfile, type DockerSeccompProfile } from '../runtime/container/seccomp.js';
import { parseDevice } from '../runtime/container/devices.js';
import { checkSysctls } from '../runtime/container/sysctl.js';

export { parseSysctl } from '../runtime/container/sysctl.js';
export { parseDockerProfile };
import { ULIMIT_NAMES } from './units.js';
import { parseMode, type NetRequest } from '../network/request.js';
import { validVolumeName } from '../volumes/store.js';

export interface RunOptions {
  /** Image reference as the user wrote it ('busybox', 'localhost:5000/app:v1', an id). */
  image: string;
  /** Command after the image; replaces the image's Cmd. Default: the image's Cmd. */
  cmd?: string[];
  /** Replaces the image's Entrypoint (one executable); '' clears it. Default: the image's. */
  entrypoint?: string;
  /** Container name, [a-zA-Z0-9][a-zA-Z0-9_.-]+. Default: a random adjective_name. */
  name?: string;
  /** Remove the container (and its writable layer) when it exits. Default false. */
  rm?: boolean;
  /** KEY=VALUE entries, after the image's Env (later keys win). */
  env?: string[];
  /** Absolute working directory. Default: the image's WorkingDir or '/'. */
  workdir?: string;
  /** 'name', 'uid', 'uid:gid', 'name:group'. Default: the image's User or root. */
  user?: string;
  /** Memory limit, bytes (> 0, at least 6 MiB like docker). Default: none. */
  memoryBytes?: number;
  /** Memory + swap limit, bytes; -1 unlimited. Default: 2 x memoryBytes when swap is accounted. */
  memorySwapBytes?: number;
  /** CPU quota in 1e-9 CPUs (--cpus 1.5 = 1.5e9). Default: none. */
  nanoCpus?: number;
  /** Maximum number of processes; 0 or -1 = unlimited. Default: none. */
  pidsLimit?: number;
  /** Mount the root filesystem read-only. Default false. */
  readOnly?: boolean;
  /**
   * Bind mounts and volumes (-v, --mount) and tmpfs mounts (--tmpfs). A 'volume' mount names a
   * volume (made on first use) or, without a source, asks for a new anonymous one.
   */
  mounts?: MountSpec[];
  /** --label KEY=VALUE: the container's labels, over the image's (docker's Config.Labels). */
  labels?: Record<string, string>;
  /**
   * 'bridge' (default: docker's default network), 'none', 'host', 'container:<name|id>', or the
   * name or id of a user network (`hull network create`).
   */
  network?: string;
  /** --network-alias: more names on the (user) network, besides the name and the short id. */
  networkAliases?: string[];
  /** --ip: a fixed IPv4 address on the (user) network. Default: the lowest free one. */
  ip?: string;
  /** --mac-address. Default: 02:42 and the address's four bytes (docker's). */
  macAddress?: string;
  /** More networks to be on from the start, name -> place (the Engine API's EndpointsConfig). */
  endpoints?: Record<string, { aliases?: string[]; ip?: string; mac?: string }>;
  /** -p values: [ip:][hostPort[-end]:]containerPort[-end][/tcp|udp]. */
  publish?: string[];
  /** -P: publish every exposed port on a free host port. Default false. */
  publishAll?: boolean;
  /** --expose: ports exposed besides the image's EXPOSE ('80', '53/udp', '8000-8002'). */
  expose?: string[];
  /** --dns servers (IPv4). Default: the network's DNS server, else the host's (loopback ones left out). */
  dns?: string[];
  /** --dns-search domains ('.' for none). Default: the host's. */
  dnsSearch?: string[];
  /** --dns-option values (e.g. ndots:2). */
  dnsOptions?: string[];
  /** --add-host NAME:IP or NAME:host-gateway. */
  extraHosts?: string[];
  /** Default: the first 12 hex digits of the id (the host's name with network 'host'). */
  hostname?: string;
  /** Capabilities added to / dropped from docker's default set ('NET_ADMIN', 'ALL'). */
  capAdd?: string[];
  capDrop?: string[];
  /**
   * 'no-new-privileges[=true|false]', 'seccomp=unconfined', 'seccomp=builtin', or 'seccomp=' and
   * a profile's JSON text (docker's format; the CLI reads `seccomp=FILE` and sends the text, as
   * docker's does).
   */
  securityOpt?: string[];
  /** docker's --privileged: every capability, no seccomp, the host's devices, /sys writable. Default false. */
  privileged?: boolean;
  /** --device HOST[:CONTAINER[:PERMS]] (PERMS: r, w, m; default rwm). */
  devices?: string[];
  /** --group-add: group names (from the image's /etc/group) or gids. */
  groupAdd?: string[];
  /** --sysctl KEY=VALUE, namespaced ones only. */
  sysctls?: Record<string, string>;
  /**
   * --userns: 'auto' (a user namespace with its own range of host ids: root inside is an
   * unprivileged uid outside) or 'host' (the host's: root inside is root). Default: 'host', or
   * HULL_USERNS_DEFAULT (auto|host) where the engine runs.
   */
  userns?: string;
  /** Resource limits (--ulimit), clamped to the caller's hard limits. */
  ulimits?: Ulimit[];
  /** Run tini as pid 1. Default false. */
  init?: boolean;
  /** Keep stdin open (-i). Default false. */
  interactive?: boolean;
  /**
   * Close the container's stdin when the first attached client's input ends (docker's
   * StdinOnce; `docker run -i` sets it). Without a TTY only, as docker. Default false.
   */
  stdinOnce?: boolean;
  /** Allocate a pseudo-terminal (-t). Default false. */
  tty?: boolean;
  /** OCI runtime: crun (default), runc, runsc. */
  runtime?: string;
  /** Which wall: 'container' (default) or 'vm'. */
  isolation?: Wall;
  /** VM accelerator: 'auto' (default: KVM when a probe boot shows it works, else TCG), 'kvm' or 'tcg'. VM wall only. */
  vmAccel?: 'auto' | 'kvm' | 'tcg';
  /** How a VM starts: 'auto' restores a template (runtime/vm/snapshot.ts), 'cold' boots. Default: DEFAULT_VM_BOOT there. */
  vmBoot?: 'auto' | 'cold';
  /** Platform to pull when the image is missing, os/arch. Default: the host's. */
  platform?: string;
}

/** Said (CLI stderr, the API's Warnings) whenever a container is made --privileged. */
export const PRIVILEGED_WARNING =
  'WARNING: --privileged: the container gets every capability, no seccomp filter, every host device and a writable /sys; root inside is root on the host';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const MIN_MEMORY = 6 * 1024 * 1024;

export interface Security {
  noNewPrivileges: boolean;
  seccomp: 'default' | 'unconfined' | 'custom';
  seccompProfile?: DockerSeccompProfile;
}

export function parseSecurityOpts(opts: string[]): Security {
  const s: Security = { noNewPrivileges: false, seccomp: 'default' };
  for (const o of opts) {
    const m = /^([a-z-]+)(?:[=:]([\s\S]*))?$/.exec(o);
    const key = m?.[1];
    const val = m?.[2];
    if (key === 'no-new-privileges' && (val === undefined || val === 'true' || val === 'false')) {
      s.noNewPrivileges = val !== 'false';
    } else if (key === 'seccomp' && val === 'unconfined') {
      s.seccomp = 'unconfined';
      delete s.seccompProfile;
    } else if (key === 'seccomp' && (val === 'builtin' || val === 'default')) {
      s.seccomp = 'default';
      delete s.seccompProfile;
    } else if (key === 'seccomp' && val !== undefined && val.trimStart().startsWith('{')) {
      try {
        s.seccompProfile = parseDockerProfile(val);
      } catch (e) {
        throw invalid(`invalid --security-opt seccomp profile: ${(e as Error).message}`);
      }
      s.seccomp = 'custom';
    } else if (key === 'seccomp') {
      throw invalid(`invalid --security-opt seccomp=${val ?? ''}: give unconfined, builtin, or a profile's JSON (hull run reads seccomp=FILE and sends its text)`);
    } else {
      throw invalid(`invalid --security-opt: ${JSON.stringify(o.length > 80 ? `${o.slice(0, 80)}...` : o)} (supported: no-new-privileges, seccomp=unconfined|builtin|FILE)`);
    }
  }
  return s;
}

/**
 * The user namespace mode: --userns (auto, host, '' = the default), else HULL_USERNS_DEFAULT,
 * else host. A VM is always 'host' here (its own kernel). Throws on other values.
 */
export function usernsModeOf(o: Pick<RunOptions, 'userns' | 'isolation'>, env: NodeJS.ProcessEnv = process.env): 'auto' | 'host' {
  const asked = o.userns ?? '';
  if (!['', 'auto', 'host'].includes(asked)) throw invalid(`invalid --userns "${asked}": auto or host`);
  const dflt = env.HULL_USERNS_DEFAULT ?? '';
  if (!['', 'auto', 'host'].includes(dflt)) throw invalid(`HULL_USERNS_DEFAULT=${dflt}: auto or host`);
  if ((o.isolation ?? 'container') === 'vm') return 'host';
  return (asked || dflt || 'host') as 'auto' | 'host';
}

/** The --sysctl list as a map (later keys win), checked to be namespaced for this network mode. */
export function sysctlMap(o: Pick<RunOptions, 'sysctls' | 'network'>): Record<string, string> | undefined {
  if (!o.sysctls || Object.keys(o.sysctls).length === 0) return undefined;
  const map: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.sysctls)) {
    if (typeof v !== 'string') throw invalid(`invalid --sysctl ${k}: the value must be a string`);
    map[k.replace(/\//g, '.')] = v;
  }
  checkSysctls(map, o.network);
  return map;
}

/** Validate what does not depend on the image. Throws INVALID_ARGUMENT naming the option. */
export function validateRunOptions(o: RunOptions): void {
  if (!o.image) throw invalid('an image is required');
  if (o.name !== undefined && !NAME_RE.test(o.name)) {
    throw invalid(`Invalid container name (${o.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  if (o.workdir !== undefined && o.workdir !== '' && !o.workdir.startsWith('/')) {
    throw invalid(`the working directory '${o.workdir}' is invalid, it needs to be an absolute path`);
  }
  if (o.memoryBytes !== undefined) {
    if (!Number.isInteger(o.memoryBytes) || o.memoryBytes < 0) throw invalid(`invalid memory limit ${o.memoryBytes}: bytes, a positive integer`);
    if (o.memoryBytes > 0 && o.memoryBytes < MIN_MEMORY) throw invalid('Minimum memory limit allowed is 6MB');
  }
  if (o.memorySwapBytes !== undefined && o.memorySwapBytes !== -1) {
    if (!o.memoryBytes) throw invalid('You should always set the Memory limit when using Memoryswap limit');
    if (o.memorySwapBytes < o.memoryBytes) throw invalid('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (o.nanoCpus !== undefined && (!Number.isInteger(o.nanoCpus) || o.nanoCpus < 0)) throw invalid(`invalid --cpus: ${o.nanoCpus / 1e9}`);
  if (o.pidsLimit !== undefined && !Number.isInteger(o.pidsLimit)) throw invalid(`invalid --pids-limit: ${o.pidsLimit}`);
  if (o.network !== undefined && (typeof o.network !== 'string' || o.network === '')) throw invalid('invalid --network: give bridge, none, host, container:NAME or a network name');
  if (o.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(o.hostname)) throw invalid(`invalid hostname format: ${o.hostname}`);
  for (const c of o.capAdd ?? []) normalizeCap(c, '--cap-add');
  for (const c of o.capDrop ?? []) normalizeCap(c, '--cap-drop');
  parseSecurityOpts(o.securityOpt ?? []);
  for (const d of o.devices ?? []) parseDevice(d);
  for (const g of o.groupAdd ?? []) if (typeof g !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(g)) throw invalid(`invalid --group-add ${JSON.stringify(g)}: a group name or gid`);
  sysctlMap(o);
  const userns = usernsModeOf(o);
  const idm = (o.mounts ?? []).find((m) => m.idmap);
  if (idm && userns !== 'auto') throw invalid(`-v ${idm.source}:${idm.destination}:idmap needs --userns=auto (the mapping is the container's range)`);
  if (userns === 'auto' && o.privileged) throw invalid('--privileged cannot be used with --userns=auto: a privileged container is root on the host (add --userns=host)');
  if (userns === 'auto' && (o.network === 'host' || o.network?.startsWith('container:'))) throw invalid(`--userns=auto cannot be used with --network ${o.network}: that network namespace belongs to another user namespace (add --userns=host)`);
  if (o.userns === 'auto' && (o.isolation ?? 'container') === 'vm') throw invalid('--userns=auto is the container wall\'s: a VM has its own kernel and users');
  if ((o.isolation ?? 'container') === 'vm') {
    const asked = [o.privileged && '--privileged', o.devices?.length && '--device', o.sysctls && Object.keys(o.sysctls).length && '--sysctl', o.groupAdd?.length && '--group-add'].filter(Boolean);
    if (asked.length) throw invalid(`${asked.join(', ')}: the container wall's options; a VM has its own kernel and devices (drop ${asked.length > 1 ? 'them' : 'it'} or run without --vm)`);
  }
  for (const u of o.ulimits ?? []) if (!ULIMIT_NAMES.includes(u.name)) throw invalid(`unknown ulimit name ${u.name}`);
  for (const m of o.mounts ?? []) {
    if (!m.destination.startsWith('/')) throw invalid(`invalid mount destination ${m.destination}: must be absolute`);
    if (m.type === 'volume' && m.source !== undefined && m.source !== '' && !validVolumeName(m.source)) throw invalid(`invalid volume name ${JSON.stringify(m.source)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  for (const [k, v] of Object.entries(o.labels ?? {})) if (k === '' || typeof v !== 'string') throw invalid(`invalid label ${JSON.stringify(k)}: a label is KEY=VALUE with a non-empty key`);
  if (o.isolation !== undefined && o.isolation !== 'container' && o.isolation !== 'vm') throw invalid(`invalid --isolation ${String(o.isolation)}: container or vm`);
  if (o.vmAccel !== undefined && !['auto', 'kvm', 'tcg'].includes(o.vmAccel)) throw invalid(`invalid --vm-accel "${String(o.vmAccel)}": auto, kvm or tcg`);
  if (o.vmAccel !== undefined && o.vmAccel !== 'auto' && (o.isolation ?? 'container') !== 'vm') throw invalid('--vm-accel applies to the VM wall only: add --vm');
  if (o.vmBoot !== undefined && !['auto', 'cold'].includes(o.vmBoot)) throw invalid(`invalid --vm-boot "${String(o.vmBoot)}": auto or cold`);
  if (o.vmBoot !== undefined && (o.isolation ?? 'container') !== 'vm') throw invalid('--vm-boot applies to the VM wall only: add --vm');
  if (o.runtime !== undefined && !['crun', 'runc', 'runsc'].includes(o.runtime)) throw invalid(`unknown runtime "${o.runtime}": choose crun, runc or runsc`);
}

/** docker: argv from --entrypoint / image Entrypoint and the command / image Cmd. */
export function resolveArgs(o: RunOptions, cfg: ImageConfig): string[] {
  const img = cfg.config ?? {};
  if (o.entrypoint !== undefined) {
    const ep = o.entrypoint === '' ? [] : [o.entrypoint];
    return [...ep, ...(o.cmd ?? [])];
  }
  const ep = img.Entrypoint ?? [];
  const cmd = o.cmd && o.cmd.length > 0 ? o.cmd : (img.Cmd ?? []);
  return [...ep, ...cmd];
}

const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function buildInstanceSpec(
  o: RunOptions,
  image: { id: string; config: ImageConfig; lowerDirs: string[] },
  ids: { id: string; name: string; dir: string; hostHostname?: string },
): InstanceSpec {
  const img = image.config.config ?? {};
  const args = resolveArgs(o, image.config);
  if (args.length === 0) throw invalid('No command specified');
  const hostname = o.hostname ?? (o.network === 'host' && ids.hostHostname ? ids.hostHostname : ids.id.slice(0, 12));
  const mode = parseMode(o.network);
  const envMap = new Map<string, string>();
  const put = (kv: string) => envMap.set(kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv, kv);
  put(DEFAULT_PATH_ENV);
  put(`HOSTNAME=${hostname}`);
  for (const kv of img.Env ?? []) put(kv);
  if (o.tty) put('TERM=xterm');
  for (const kv of o.env ?? []) put(kv);
  const sec = parseSecurityOpts(o.securityOpt ?? []);
  const userns = usernsModeOf(o);
  // --userns=auto: no-new-privileges unless asked otherwise (setuid binaries gain nothing useful)
  const nnpAsked = (o.securityOpt ?? []).some((x) => x.startsWith('no-new-privileges'));
  return {
    id: ids.id,
    name: ids.name,
    dir: ids.dir,
    image: { id: image.id, lowerDirs: image.lowerDirs, config: image.config },
    process: {
      args,
      env: [...envMap.values()],
      cwd: o.workdir || img.WorkingDir || '/',
      user: o.user ?? img.User ?? '',
      terminal: o.tty ?? false,
      stdin: o.interactive ?? false,
      ...(o.interactive && o.stdinOnce ? { stdinOnce: true } : {}),
    },
    hostname,
    autoRemove: o.rm ?? false,
    resources: {
      memoryBytes: o.memoryBytes || undefined,
      memorySwapBytes: o.memorySwapBytes,
      nanoCpus: o.nanoCpus || undefined,
      pidsLimit: o.pidsLimit && o.pidsLimit > 0 ? o.pidsLimit : undefined,
    },
    readOnlyRootfs: o.readOnly ?? false,
    mounts: o.mounts ?? [],
    network: mode.kind === 'none' || mode.kind === 'host' ? mode.kind : 'netns',
    capAdd: o.capAdd ?? [],
    capDrop: o.capDrop ?? [],
    noNewPrivileges: sec.noNewPrivileges || (userns === 'auto' && !nnpAsked),
    seccomp: sec.seccomp,
    ...(userns === 'auto' ? { usernsMode: 'auto' as const } : {}),
    ...(sec.seccompProfile ? { seccompProfile: sec.seccompProfile } : {}),
    ...(o.privileged ? { privileged: true } : {}),
    ...(o.devices?.length ? { devices: o.devices.map(parseDevice) } : {}),
    ...(o.groupAdd?.length ? { groupAdd: o.groupAdd } : {}),
    ...(sysctlMap(o) ? { sysctls: sysctlMap(o) } : {}),
    ulimits: o.ulimits ?? [],
    init: o.init ?? false,
    runtime: (o.isolation ?? 'container') === 'vm' ? 'qemu' : (o.runtime ?? 'crun'),
    ...((o.isolation ?? 'container') === 'vm' ? { vm: { accel: o.vmAccel ?? 'auto', ...(o.vmBoot ? { boot: o.vmBoot } : {}) } } : {}),
  };
}

/** The network part of RunOptions, as the network stack takes it (pure). */
export function netRequest(o: RunOptions, cfg: ImageConfig): NetRequest {
  return {
    mode: o.network ?? 'none', // create stores the mode; older rows have none stored and ran without one
    primary: { aliases: o.networkAliases, ip: o.ip, mac: o.macAddress },
    more: o.endpoints ?? {},
    publish: o.publish ?? [],
    publishAll: o.publishAll ?? false,
    exposed: [...Object.keys(cfg.config?.ExposedPorts ?? {}), ...(o.expose ?? [])],
    dns: o.dns ?? [],
    dnsSearch: o.dnsSearch ?? [],
    dnsOptions: o.dnsOptions ?? [],
    extraHosts: o.extraHosts ?? [],
  };
}
