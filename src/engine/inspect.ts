/**
 * Docker-shaped views of a container row (pure): `inspect` JSON and `ps` summaries.
 */
import { humanDuration } from '../human.js';
import type { ContainerRow } from '../state/containers.js';
import type { InstanceSpec } from '../runtime/types.js';
import type { RunOptions } from './options.js';
import type { ContainerNetView } from './networks.js';

/** What the engine stores in containers.spec_json. */
export interface StoredSpec {
  opts: RunOptions;
  spec: InstanceSpec;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** docker's State.Status values. */
export function dockerStatus(row: ContainerRow): string {
  if (row.status === 'removing') return 'removing';
  if (row.status === 'dead') return 'dead';
  return row.status;
}

export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
  };
  Image: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  LogPath: string;
  HostConfig: Record<string, unknown>;
  Config: Record<string, unknown>;
  Mounts: Record<string, unknown>[];
  NetworkSettings: Record<string, unknown>;
  /** hull's own facts: the wall and what it recorded (runtime, cgroup path, monitor pid). */
  Hull: { Isolation: string; Runtime: string; Facts: Record<string, unknown> };
}

export function toInspect(row: ContainerRow, stored: StoredSpec, logPath: string, net?: ContainerNetView): ContainerInspect {
  const { spec, opts } = stored;
  const running = row.status === 'running' || row.status === 'paused';
  const facts = JSON.parse(row.runtime_json || '{}') as Record<string, unknown>;
  const anonymous = new Set(anonymousDestinations(stored));
  const binds = spec.mounts
    .filter((m) => m.type === 'bind' && !anonymous.has(m.destination))
    .map((m) => `${m.volume ?? m.source}:${m.destination}${m.readOnly ? ':ro' : ''}`);
  const volumes: Record<string, object> = {};
  for (const d of anonymous) volumes[d] = {};
  const tmpfs: Record<string, string> = {};
  for (const m of spec.mounts.filter((x) => x.type === 'tmpfs')) tmpfs[m.destination] = (m.options ?? []).join(',');
  const img = spec.image.config.config ?? {};
  return {
    Id: row.id,
    Created: row.created_at,
    Path: spec.process.args[0] ?? '',
    Args: spec.process.args.slice(1),
    State: {
      Status: dockerStatus(row),
      Running: running,
      Paused: row.status === 'paused',
      Restarting: false,
      OOMKilled: row.oom_killed === 1,
      Dead: row.status === 'dead',
      Pid: running ? row.pid : 0,
      ExitCode: row.exit_code ?? 0,
      Error: row.error,
      StartedAt: row.started_at ?? ZERO_TIME,
      FinishedAt: row.finished_at ?? ZERO_TIME,
    },
    Image: row.image_id,
    Name: `/${row.name}`,
    RestartCount: row.restart_count,
    Driver: row.isolation === 'vm' ? 'erofs' : 'overlay',
    Platform: 'linux',
    LogPath: logPath,
    HostConfig: {
      Binds: binds.length ? binds : null,
      NetworkMode: net?.HostConfig.NetworkMode ?? spec.network,
      PortBindings: net?.HostConfig.PortBindings ?? {},
      PublishAllPorts: net?.HostConfig.PublishAllPorts ?? false,
      Dns: net?.HostConfig.Dns ?? [],
      DnsSearch: net?.HostConfig.DnsSearch ?? [],
      DnsOptions: net?.HostConfig.DnsOptions ?? [],
      ExtraHosts: net?.HostConfig.ExtraHosts ?? null,
      AutoRemove: opts.rm ?? false,
      Memory: spec.resources.memoryBytes ?? 0,
      MemorySwap: spec.resources.memorySwapBytes ?? (spec.resources.memoryBytes ? spec.resources.memoryBytes * 2 : 0),
      NanoCpus: spec.resources.nanoCpus ?? 0,
      PidsLimit: spec.resources.pidsLimit ?? null,
      ReadonlyRootfs: spec.readOnlyRootfs,
      CapAdd: spec.capAdd.length ? spec.capAdd : null,
      CapDrop: spec.capDrop.length ? spec.capDrop : null,
      SecurityOpt: opts.securityOpt?.length ? opts.securityOpt : null,
      Privileged: spec.privileged ?? false,
      Devices: spec.devices?.length ? spec.devices.map((d) => ({ PathOnHost: d.hostPath, PathInContainer: d.containerPath, CgroupPermissions: d.permissions })) : [],
      GroupAdd: spec.groupAdd?.length ? spec.groupAdd : null,
      Sysctls: spec.sysctls ?? null,
      UsernsMode: spec.usernsMode === 'auto' ? 'auto' : '',
      // hull's own: the --userns=auto range on the host (container ids 0..Size-1)
      HullIdRange: spec.userns ? { Uid: spec.userns.uid, Gid: spec.userns.gid, Size: spec.userns.size } : null,
      Ulimits: spec.ulimits.length ? spec.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) : null,
      Tmpfs: Object.keys(tmpfs).length ? tmpfs : null,
      Init: spec.init,
      // the monitor's k8s-file log is read back through the API as docker's json-file driver's
      // is (logs, logs -f, attach); docker-compose tails only containers whose driver it knows
      LogConfig: { Type: 'json-file', Config: {} },
      Runtime: row.runtime,
      Isolation: row.isolation,
    },
    Config: {
      Hostname: spec.hostname,
      User: opts.user ?? img.User ?? '',
      Env: spec.process.env,
      Cmd: opts.cmd?.length ? opts.cmd : (img.Cmd ?? null),
      Entrypoint: opts.entrypoint !== undefined ? (opts.entrypoint === '' ? null : [opts.entrypoint]) : (img.Entrypoint ?? null),
      Image: row.image_ref,
      WorkingDir: opts.workdir ?? img.WorkingDir ?? '',
      Tty: spec.process.terminal,
      OpenStdin: spec.process.stdin,
      StdinOnce: spec.process.stdinOnce === true,
      Labels: { ...(img.Labels ?? {}), ...(opts.labels ?? {}) },
      Volumes: Object.keys(volumes).length ? volumes : null,
      StopSignal: img.StopSignal ?? 'SIGTERM',
      ...(net && Object.keys(net.ExposedPorts).length ? { ExposedPorts: net.ExposedPorts } : {}),
      ...(net?.MacAddress ? { MacAddress: net.MacAddress } : {}),
    },
    Mounts: mountsView(spec),
    NetworkSettings: net?.NetworkSettings ?? { Networks: { [spec.network]: {} } },
    Hull: { Isolation: row.isolation, Runtime: row.runtime, Facts: facts },
  };
}

/** Destinations of the container's anonymous volumes: volume mounts without a source, and image VOLUMEs nothing else covers. */
export function anonymousDestinations(stored: StoredSpec): string[] {
  const named = new Set((stored.opts.mounts ?? []).filter((m) => m.type !== 'volume' || m.source).map((m) => m.destination.replace(/(.)\/+$/, '$1')));
  return stored.spec.mounts.filter((m) => m.volume && !named.has(m.destination)).map((m) => m.destination);
}

/** docker's Mounts (swagger: MountPoint): binds and volumes. */
export function mountsView(spec: InstanceSpec): Record<string, unknown>[] {
  return spec.mounts
    .filter((m) => m.type === 'bind')
    .map((m) =>
      m.volume
        ? { Type: 'volume', Name: m.volume, Source: m.source, Destination: m.destination, Driver: 'local', Mode: m.readOnly ? 'ro' : 'z', RW: !m.readOnly, Propagation: '' }
        : { Type: 'bind', Source: m.source, Destination: m.destination, Mode: m.readOnly ? 'ro' : '', RW: !m.readOnly, Propagation: 'rprivate' },
    );
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  State: string;
  Status: string;
  Isolation: string;
  Ports: ContainerNetView['Ports'];
  /** docker ps' PORTS column. */
  PortsText: string;
  NetworkMode: string;
  NetworkSettings: { Networks: Record<string, unknown> };
  /** The image's labels and the container's own. */
  Labels: Record<string, string>;
  Mounts: Record<string, unknown>[];
}

/** docker ps STATUS column: 'Up 5 seconds', 'Exited (0) 2 minutes ago', 'Created'. */
export function statusText(row: ContainerRow, now = Date.now()): string {
  const since = (iso: string | null) => humanDuration(Math.max(0, now - Date.parse(iso ?? '')));
  if (row.status === 'running') return `Up ${since(row.started_at)}`;
  if (row.status === 'paused') return `Up ${since(row.started_at)} (Paused)`;
  if (row.status === 'exited') return `Exited (${row.exit_code ?? 0}) ${since(row.finished_at)} ago`;
  if (row.status === 'created') return 'Created';
  if (row.status === 'removing') return 'Removal In Progress';
  return 'Dead';
}

export function toSummary(row: ContainerRow, stored: StoredSpec, status: string, net?: ContainerNetView): ContainerSummary {
  return {
    Id: row.id,
    Names: [`/${row.name}`],
    Image: row.image_ref,
    ImageID: row.image_id,
    Command: stored.spec.process.args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' '),
    Created: Math.floor(Date.parse(row.created_at) / 1000),
    State: dockerStatus(row),
    Status: status,
    Isolation: row.isolation,
    Ports: net?.Ports ?? [],
    PortsText: net?.PortsText ?? '',
    NetworkMode: net?.HostConfig.NetworkMode ?? stored.spec.network,
    NetworkSettings: { Networks: (net?.NetworkSettings.Networks as Record<string, unknown> | undefined) ?? {} },
    Labels: { ...(stored.spec.image.config.config?.Labels ?? {}), ...(stored.opts.labels ?? {}) },
    Mounts: mountsView(stored.spec),
  };
}

