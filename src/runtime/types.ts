/**
 * The contract both walls implement. The engine (src/engine/) turns an image config plus run
 * options into an InstanceSpec, picks a wall, and drives it through this interface only.
 *
 * Shared between the container wall (runtime/container/) and the VM wall (runtime/vm/):
 * extend compatibly (new optional members), never break one wall for the other.
 */
import type { Readable, Writable } from 'node:stream';
import type { ImageConfig } from '../oci/types.js';
import type { DockerSeccompProfile } from './container/seccomp.js';
import type { DeviceRequest } from './container/devices.js';

export type Wall = 'container' | 'vm';

export interface MountSpec {
  /**
   * 'volume' exists only in what callers ask (RunOptions): the engine turns each into a 'bind'
   * of the volume's directory (with `volume` set) before a wall sees it.
   */
  type: 'bind' | 'tmpfs' | 'volume';
  /** Host path for bind mounts; the volume's name for volume mounts (absent: a new anonymous volume). */
  source?: string;
  /** On a bind the engine made of a volume: the volume's name. */
  volume?: string;
  /** Volume mounts: do not copy the image's files at the destination into an empty volume (docker's nocopy). */
  noCopy?: boolean;
  /** Absolute path inside the instance. */
  destination: string;
  readOnly: boolean;
  /** Extra options, e.g. tmpfs 'size=64m', 'mode=1777'. */
  options?: string[];
  /**
   * A bind under --userns=auto mounted idmapped with the container's range (`-v SRC:DST:idmap`,
   * podman's): a file of host uid N is uid N inside, and what the container's root writes is
   * host uid 0 on disk.
   */
  idmap?: boolean;
}

export interface Ulimit {
  /** e.g. 'nofile', 'nproc' (docker names, without RLIMIT_). */
  name: string;
  soft: number;
  hard: number;
}

/** One interface of a prepared network namespace (for a VM: what its NIC mirrors and becomes). */
export interface NetInterface {
  /** Name inside the namespace: eth0, eth1, ... */
  name: string;
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  /** Bytes. */
  mtu: number;
  /** a.b.c.d/prefix */
  address: string;
}

/**
 * A network namespace src/network prepared for one run; the wall joins it and never knows which
 * driver made it. A container joins it as its network namespace; a VM's NICs mirror its
 * interfaces (src/network/vm-tap.ts) and the guest agent gives them their addresses and routes.
 */
export interface NetnsSpec {
  /** The namespace file. */
  path: string;
  /** Another container's namespace (--network container:X): nothing in it is this instance's. */
  shared?: boolean;
  interfaces: NetInterface[];
  /** The default route's gateway, when there is one. */
  gateway?: string;
}

/** The contents of the instance's /etc/hosts and /etc/resolv.conf (src/network/etc.ts). */
export interface EtcFiles {
  hosts: string;
  resolvConf: string;
}

/** Everything a wall needs to start one instance. Built by the engine, validated there. */
export interface InstanceSpec {
  /** 64 hex. */
  id: string;
  name: string;
  /** containers/<id>: the wall's private state directory (bundle, upper dir, logs, sockets). */
  dir: string;
  image: {
    id: string;
    /** Unpacked layer directories, bottom layer first. */
    lowerDirs: string[];
    config: ImageConfig;
  };
  process: {
    /** argv, resolved from entrypoint + cmd. */
    args: string[];
    /** KEY=VALUE, image env overridden by -e. */
    env: string[];
    /** Absolute working directory. */
    cwd: string;
    /** As given with -u or the image's User: 'name', 'uid', 'uid:gid', 'name:group'. Empty = root. */
    user: string;
    terminal: boolean;
    /** Keep stdin open (-i). */
    stdin: boolean;
    /** Close stdin once the first attached input ends (docker's StdinOnce; absent: false). */
    stdinOnce?: boolean;
  };
  hostname: string;
  /**
   * Number of this start of the instance (the engine counts them). The monitor's exit command
   * carries it, so an exit is recorded for the run it belongs to only.
   */
  run?: number;
  /** --rm: the instance and its writable layer are removed when it exits (absent in specs stored by older hull: false). */
  autoRemove?: boolean;
  resources: {
    /** Hard memory limit in bytes (-m). For VMs: guest RAM. */
    memoryBytes?: number;
    /** Memory + swap in bytes (--memory-swap); -1 unlimited. */
    memorySwapBytes?: number;
    /** CPU quota in 1e-9 CPUs (--cpus 1.5 = 1.5e9). For VMs: vCPUs, rounded up. */
    nanoCpus?: number;
    /** Max processes (--pids-limit). */
    pidsLimit?: number;
  };
  readOnlyRootfs: boolean;
  mounts: MountSpec[];
  /**
   * 'none': a namespace of the wall's own with loopback only (no NIC for a VM); 'host': the
   * host's; 'netns': the prepared namespace in `netns` (bridge and user networks, container:X).
   */
  network: 'none' | 'host' | 'netns';
  /** Per run, filled by the engine before a start when network is 'netns'. Not stored. */
  netns?: NetnsSpec;
  /** Per run: /etc/hosts and /etc/resolv.conf; absent: the wall's defaults. Not stored. */
  etc?: EtcFiles;
  /**
   * Per run: descriptors the instance's monitor must hold open for the instance's life (the
   * published host ports, bound so nothing else takes them). Not stored.
   */
  heldFds?: number[];
  capAdd: string[];
  capDrop: string[];
  noNewPrivileges: boolean;
  /** 'default': podman's profile and hull's user-namespace rule; 'custom': `seccompProfile` as written. */
  seccomp: 'default' | 'unconfined' | 'custom';
  /** The caller's profile (docker's JSON format) when seccomp is 'custom'. */
  seccompProfile?: DockerSeccompProfile;
  /** docker's --privileged: every capability, no seccomp, the host's devices, /sys writable. Absent: false. */
  privileged?: boolean;
  /** --device: host device nodes made inside, each with its device cgroup rule. Absent: none. */
  devices?: DeviceRequest[];
  /** --group-add: more groups for the container's processes (names from the image's /etc/group, or gids). */
  groupAdd?: string[];
  /** --userns: 'auto' = a user namespace of its own with a range hull allocates; absent or 'host' = the host's. */
  usernsMode?: 'auto' | 'host';
  /** The --userns=auto range (host ids of container ids 0..size-1), filled by the engine at create and stored. */
  userns?: { uid: number; gid: number; size: number };
  /** --sysctl: namespaced sysctls written inside at start (checked by sysctl.ts). */
  sysctls?: Record<string, string>;
  ulimits: Ulimit[];
  /** Run a tiny init as pid 1 that reaps zombies and forwards signals (--init). */
  init: boolean;
  /** OCI runtime for containers: crun | runc | runsc. Ignored by the VM wall. */
  runtime: string;
  vm?: {
    /** Accelerator: auto picks KVM when a probe shows it works, TCG otherwise. */
    accel: 'auto' | 'kvm' | 'tcg';
    /** auto: restore a template (runtime/vm/snapshot.ts); cold: boot. Default: DEFAULT_VM_BOOT. */
    boot?: 'auto' | 'cold';
    /** false: never claim a warm pool's guest (a run whose claim failed restores its own). */
    pool?: boolean;
  };
  /**
   * Keep the writable layer readable after the process exited, for writableLayer() (build
   * steps). A VM's writes live in guest memory: with this set its agent streams them to the
   * host when the process exits 0 (a kept VM, not autoRemove, sends them at any exit anyway).
   * Absent: false.
   */
  captureLayer?: boolean;
}

/**
 * A stopped instance's writable layer: an overlay upper directory (container wall), or a tar of
 * it in OCI layer form streamed out of the guest (VM wall; untrusted: unpack it with the
 * hardened unpacker before use).
 */
export type WritableLayer =
  /** `release`: set when `dir` is a copy made for this caller (a running VM's layer), removed by calling it. */
  | { kind: 'upper'; dir: string; release?: () => void }
  | { kind: 'tar'; file: string };

export interface ExitInfo {
  exitCode: number;
  oomKilled: boolean;
  /** Why the instance could not run, when it never started its process. */
  error?: string;
}

export interface Stdio {
  stdin?: Readable | null;
  stdout: Writable;
  stderr: Writable;
}

export type InstanceState =
  /** pending: created by the runtime but not started yet (a start is under way, or was cut short). */
  | { running: true; pid: number; pending?: boolean }
  | { running: false; exit: ExitInfo };

export interface ExecProcess {
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  terminal: boolean;
  stdin: boolean;
  /** With a terminal: its first window size (docker's ConsoleSize). */
  consoleSize?: { rows: number; cols: number };
  /** With a terminal: called once it exists, with what resizes it (false once it is gone). */
  onResizable?: (resize: (rows: number, cols: number) => boolean) => void;
}

export interface Usage {
  /** Host memory charged to the instance, bytes (cgroup usage; for VMs the QEMU process). */
  memoryBytes: number;
  memoryLimitBytes: number;
  /** CPU time used, nanoseconds. */
  cpuNs: number;
  pids: number;
}

/** One wall. Implementations are private; factories return this interface. */
export interface Isolation {
  readonly wall: Wall;
  /**
   * Foreground run: attached to `stdio`, no monitor; resolves with the exit once the process
   * ended and everything the wall set up is gone again.
   */
  runAttached(spec: InstanceSpec, stdio: Stdio, onStarted?: (pid: number) => void): Promise<ExitInfo>;
  /**
   * Detached start under a monitor that outlives the caller; output goes to the instance log,
   * `<spec.dir>/ctr.log` in the CRI "k8s-file" format (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`
   * per line), which engine/logs.ts reads for `logs`, `logs -f` and attached runs without --rm.
   * When IsolationOptions.exitCommand is set, the monitor runs it (id and run number appended) after the exit.
   */
  startDetached(spec: InstanceSpec): Promise<{ pid: number; facts?: Record<string, unknown> }>;
  /** Current state, from the monitor's files; never blocks on the instance. */
  state(spec: InstanceSpec): Promise<InstanceState>;
  /** Send a signal ('SIGTERM', 'KILL', '9', ...) to the instance's main process. */
  kill(spec: InstanceSpec, signal: string): Promise<void>;
  /** Graceful stop (SIGTERM or guest shutdown), then a hard stop after `timeoutSec`. */
  stop(spec: InstanceSpec, timeoutSec: number): Promise<void>;
  /**
   * Run another process in the running instance; resolves with its exit code. `onStarted` is
   * called once the process runs (or the attempt ended): until then the engine holds the
   * container's lease, so no stop or restart pulls the runtime's state from under the start.
   */
  exec(spec: InstanceSpec, proc: ExecProcess, stdio: Stdio, onStarted?: () => void): Promise<number>;
  /**
   * Feed `input` to the stdin of the running detached instance's main process (started with
   * process.stdin) until `input` ends, the instance's side goes away or `signal` aborts. When
   * `input` ends, the process's stdin is closed if process.stdinOnce is set and there is no
   * terminal (docker's StdinOnce); otherwise it stays open for the next attach. Backpressure:
   * `input` is read only as fast as the instance takes it. Resolves when forwarding ended.
   */
  attachStdin(spec: InstanceSpec, input: Readable, signal: AbortSignal): Promise<void>;
  usage(spec: InstanceSpec): Promise<Usage>;
  /**
   * Where the end of the current run shows (inotify targets: directories, with a name filter):
   * waiters watch these instead of polling state(). A monitor that dies without writing them is
   * noticed by the waiter's slow backstop look.
   */
  exitTargets(spec: InstanceSpec): { path: string; filter?: (name: string) => boolean }[];
  /** Remove every trace (processes, mounts, cgroups, sockets, upper dirs). Idempotent. */
  cleanup(spec: InstanceSpec): Promise<void>;
  /**
   * Optional. After a detached instance exited: read its final facts (exit code, OOM kill)
   * and free what only a running instance needs (runtime state, cgroup), keeping its log and
   * writable layer so that it can be inspected, restarted or removed later. Idempotent;
   * resolves with undefined while the instance still runs.
   */
  release?(spec: InstanceSpec): Promise<ExitInfo | undefined>;
  /**
   * What this wall left on the host for the hull root that no instance in `live` (ids of live
   * or changing containers) owns: runtime state, cgroups, monitor processes.
   */
  orphans(live: Set<string>): Promise<Orphan[]>;
  /**
   * Optional. docker update: apply spec.resources (the new limits) to the running instance;
   * nothing to do when it does not run. A wall that cannot change a running instance's limits
   * leaves this out (the engine then refuses while it runs).
   */
  update?(spec: InstanceSpec): Promise<void>;
  /** Optional. docker pause: stop every process of the instance (or the VM's vCPUs) in place. */
  pause?(spec: InstanceSpec): Promise<void>;
  /** Optional. docker unpause. Idempotent. */
  unpause?(spec: InstanceSpec): Promise<void>;
  /**
   * Optional. docker cp: run a file tool (argv of tar, stat, test, readlink) with the instance's
   * root filesystem as its root, stdin/stdout streamed; resolves with its exit code and stderr.
   * Containers: the host's static busybox chrooted into the root (running or stopped); VMs: the
   * guest's own tools, while it runs.
   */
  inRootfs?(spec: InstanceSpec, tool: string[], io: { stdin?: Readable; stdout: Writable }): Promise<{ code: number; stderr: string }>;
  /** Optional. Host pids of the instance's processes (docker top of a container); a VM's live in its guest. */
  processes?(spec: InstanceSpec): Promise<number[]>;
  /**
   * Optional. The writable layer of an instance that was not removed: a container's upper dir
   * (running or stopped); a VM's as its guest sent it at exit, or, with `running`, a running
   * VM's sent on request (`freeze`: its processes stopped meanwhile, docker commit's --pause) as
   * a copy the caller releases. FAILED_PRECONDITION, naming why, when the wall cannot give it
   * (a --rm VM, a VM killed before its guest sent it, a running VM without `running`).
   */
  writableLayer?(spec: InstanceSpec, o?: { running?: { freeze: boolean } }): Promise<WritableLayer>;
}

/** Something of a wall on this host that no live instance owns (`hull system check`). */
export interface Orphan {
  /** What it is: 'runtime-state', 'cgroup', 'monitor', 'qemu', ... */
  kind: string;
  /** Which one: a path, a pid and command line. */
  what: string;
  /** The instance id it was made for, when it can be told. */
  id?: string;
  /** Take it away. */
  fix(): Promise<void>;
}

/** Options of a wall's factory (all optional). */
export interface IsolationOptions {
  /**
   * Program and leading args the monitor of a detached instance runs after it exited; the
   * instance id and the run number (spec.run) are appended. The engine passes its exit hook here (records the exit in SQLite).
   */
  exitCommand?: string[];
}
