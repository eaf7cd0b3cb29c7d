/**
 * One way of running the workload that a contrast measures: one of hull's walls, or a peer
 * tool as a reference row. Drivers track every instance they start, so `removeAll` can take
 * them all away again (also after an interrupt or a failure half-way).
 */
import type { Accel } from './types.js';

export interface StartupSample {
  ms: number;
  ok: boolean;
  error?: string;
  /** Phase timings the wall reported for this run (HULL_TRACE), milliseconds. */
  phases?: Record<string, number>;
}

export interface IdleInstance {
  /** The name the driver gave it. */
  name: string;
  /** Full id. */
  id: string;
  /** Main host pid (container init / QEMU). */
  pid: number;
}

export interface ProbeOptions {
  /** A host directory bind-mounted at VOLUME_PATH. */
  volume?: string;
  /** More host directories (host dir -> path inside). */
  volumes?: Array<[string, string]>;
  /** An anonymous volume of the run mounted here (`-v PATH`): hull makes it, owned by the instance's root; removed with the instance. */
  anonymousVolume?: string;
  /** 'none' (default: like the podman reference rows) or 'bridge' (the default bridge network). */
  network?: 'none' | 'bridge';
  /** Memory of the instance (`--memory`), bytes; default the wall's own. */
  memoryBytes?: number;
  /** Kill after this long, milliseconds; default 180000. */
  timeoutMs?: number;
}

/** Where `probe`'s volume appears inside. */
export const VOLUME_PATH = '/hull-contrast-vol';

export interface Driver {
  readonly name: string;
  readonly kind: 'hull' | 'reference';
  /** How the wall's CPU is provided: 'native' (containers, peers), 'tcg' or 'kvm' (VM walls); undefined when not known yet. */
  readonly accel?: Accel;
  /** The start-up command as a user would type it. */
  readonly command: string;
  /** Get ready (e.g. load the image into a peer's store). Throws when the driver cannot run. */
  prepare(): Promise<void>;
  /** One `run --rm IMAGE true`, timed from the caller's side. */
  startupOnce(): Promise<StartupSample>;
  /** The VM wall: one `run --rm --vm-boot MODE IMAGE true` (cold: a kernel boot; auto: a template restored). */
  bootOnce?(mode: 'cold' | 'auto'): Promise<StartupSample>;
  /**
   * One run of the workload split into separately timed CLI calls (create, start, wait, rm),
   * each timed from the caller's side; undefined when unsupported.
   */
  splitOnce?(): Promise<{ ok: boolean; phases: Record<string, number>; error?: string }>;
  /** Start `count` idle `sleep` instances with `memoryBytes` each, in parallel; undefined when unsupported. */
  startIdle?(count: number, memoryBytes: number): Promise<{ instances: IdleInstance[]; ms: number; failures: string[] }>;
  /** Remove the given idle instances (all of them when omitted). */
  remove(instances?: IdleInstance[]): Promise<void>;
  /**
   * Run a busybox sh script inside (isolation probes, cpu and disk tasks); undefined when
   * unsupported. `volume`: a host directory bind-mounted at VOLUME_PATH.
   */
  probe?(script: string, opts?: ProbeOptions): Promise<{ ok: boolean; stdout: string; error?: string }>;
  /**
   * Start a detached instance running a busybox sh script on the default bridge network, with
   * host directories mounted (host dir -> path inside) and ports published ('127.0.0.1:H:C');
   * its address on the bridge is returned. Removed with `remove([instance])`.
   */
  serve?(script: string, opts: { volumes: Array<[string, string]>; publish: string[] }): Promise<{ instance?: IdleInstance; ip?: string; error?: string }>;
  /** Remove everything this driver ever started and its own temp state; returns what could not be removed. */
  dispose(): Promise<string[]>;
}

/** Parse `hull inspect` / `podman inspect` JSON into id and State.Pid per entry. */
export function parseInspect(text: string): Array<{ id: string; name: string; pid: number }> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  return v.flatMap((e: unknown) => {
    if (!e || typeof e !== 'object') return [];
    const o = e as { Id?: unknown; Name?: unknown; State?: { Pid?: unknown } };
    if (typeof o.Id !== 'string') return [];
    const name = typeof o.Name === 'string' ? o.Name.replace(/^\//, '') : '';
    const pid = typeof o.State?.Pid === 'number' ? o.State.Pid : 0;
    return [{ id: o.Id, name, pid }];
  });
}

/** Parse a HULL_TRACE file: JSON lines {"phase": string, "ms": number}; others ignored. */
export function parseTrace(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const o = JSON.parse(line) as { phase?: unknown; ms?: unknown };
      if (typeof o.phase === 'string' && typeof o.ms === 'number' && Number.isFinite(o.ms) && o.ms >= 0) out[o.phase] = (out[o.phase] ?? 0) + o.ms;
    } catch {
      /* not a trace line */
    }
  }
  return out;
}
