/**
 * RunOptions: what a caller (CLI, API server, library user) asks of `run`/`create`, with units
 * explicit; validated here, where they enter the engine. buildInstanceSpec turns them plus the
 * image config into the wall-neutral InstanceSpec (pure).
 */
import { invalid } from '../errors.js';
import type { ImageConfig } from '../oci/types.js';
import type { InstanceSpec, MountSpec, Ulimit, Wall } from '../runtime/types.js';
import { normalizeCap } from '../runtime/container/caps.js';
import { ULIMIT_NAMES } from './units.js';
import { parseMode, type NetRequest } from '../network/request.js';

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
  /** Bind mounts (-v) and tmpfs mounts (--tmpfs). */
  mounts?: MountSpec[];
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
  /** 'no-new-privileges[=true|false]', 'seccomp=unconfined'. */
  securityOpt?: string[];
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
  /** Platform to pull when the image is missing, os/arch. Default: the host's. */
  platform?: string;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const MIN_MEMORY = 6 * 1024 * 1024;

export interface Security {
  noNewPrivileges: boolean;
  seccomp: 'default' | 'unconfined';
}

export function parseSecurityOpts(opts: string[]): Security {
  const s: Security = { noNewPrivileges: false, seccomp: 'default' };
  for (const o of opts) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(o);
    const key = m?.[1];
    const val = m?.[2];
    if (key === 'no-new-privileges' && (val === undefined || val === 'true' || val === 'false')) {
      s.noNewPrivileges = val !== 'false';
    } else if (key === 'seccomp' && val === 'unconfined') {
      s.seccomp = 'unconfined';
    } else if (key === 'seccomp') {
      throw invalid(`invalid --security-opt ${JSON.stringify(o)}: only seccomp=unconfined is supported (the default profile applies otherwise)`);
    } else {
      throw invalid(`invalid --security-opt: ${JSON.stringify(o)} (supported: no-new-privileges, seccomp=unconfined)`);
    }
  }
  return s;
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
  for (const u of o.ulimits ?? []) if (!ULIMIT_NAMES.includes(u.name)) throw invalid(`unknown ulimit name ${u.name}`);
  for (const m of o.mounts ?? []) if (!m.destination.startsWith('/')) throw invalid(`invalid mount destination ${m.destination}: must be absolute`);
  if (o.isolation !== undefined && o.isolation !== 'container' && o.isolation !== 'vm') throw invalid(`invalid --isolation ${String(o.isolation)}: container or vm`);
  if (o.vmAccel !== undefined && !['auto', 'kvm', 'tcg'].includes(o.vmAccel)) throw invalid(`invalid --vm-accel "${String(o.vmAccel)}": auto, kvm or tcg`);
  if (o.vmAccel !== undefined && o.vmAccel !== 'auto' && (o.isolation ?? 'container') !== 'vm') throw invalid('--vm-accel applies to the VM wall only: add --vm');
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
    noNewPrivileges: sec.noNewPrivileges,
    seccomp: sec.seccomp,
    ulimits: o.ulimits ?? [],
    init: o.init ?? false,
    runtime: (o.isolation ?? 'container') === 'vm' ? 'qemu' : (o.runtime ?? 'crun'),
    ...((o.isolation ?? 'container') === 'vm' ? { vm: { accel: o.vmAccel ?? 'auto' } } : {}),
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
