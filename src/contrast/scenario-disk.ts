/**
 * The disk dimension of a contrast: fio (Debian's) sequential (1 MiB blocks) and random (4 KiB)
 * writes and reads on each wall's root file system and on a volume, and on the host directory
 * hull's data lives in as the reference. The same fio binary everywhere: the host's, shipped into
 * the instances with the libraries `ldd` lists (tools.ts) and run through its own loader. O_DIRECT
 * where the file system takes it (one direct 4 KiB dd decides), buffered where not, said per
 * row. The volume is an anonymous volume of the run (`-v /hull-contrast-vol`, removed with the
 * instance): hull makes it for the instance, so under --userns=auto it belongs to the
 * container's own root (its range), and no host directory has to be opened to other ids.
 * Rounds are interleaved: host, then one instance per wall doing root and volume. Temp files
 * and instances are removed in `finally`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { layout } from '../paths.js';
import { checkAbort } from './abort.js';
import { VOLUME_PATH, type Driver } from './driver.js';
import { lastLine, timedRun } from './spawn.js';
import { median } from './stats.js';
import { shipTools, shippedCommand } from './tools.js';
import type { Accel, DiskFigure, DiskResult, DiskRow } from './types.js';

export interface DiskOptions {
  /** Size of the test file, MiB. Default 32 (a VM root is a tmpfs upper dir in guest RAM: it must fit). */
  seqMiB: number;
  /** 4 KiB blocks per random test. Default 2048 (8 MiB). */
  smallBlocks: number;
  /** Interleaved rounds. Default 2. */
  rounds: number;
}

/** The tool of the rows the summary and advise quote. */
export const DISK_TOOL = 'fio';
/** Where fio and its libraries are mounted inside (read-only). */
export const DISK_TOOLS_PATH = '/hull-contrast-fio';

const MiB = 1048576;
const SMALL = 4096;
/**
 * Memory of each disk instance, every wall alike: Debian's fio links libceph-common, whose
 * 130 MiB of zero-fill (bss) a 128 MiB guest refuses to map ('cannot map zero-fill pages');
 * the pages are never touched, so neither wall pays for them.
 */
export const DISK_MEMORY = 512 * MiB;
export const DISK_TESTS = ['seq-write', 'seq-read', 'rand-write', 'rand-read'] as const;

/** Pure: fio's arguments but --filename and --direct: the four jobs one after the other, no shared memory (--thread). */
export function fioJobArgs(o: DiskOptions): string[] {
  const g = ['--output-format=json', '--thread', `--size=${o.seqMiB}m`, '--ioengine=psync', '--end_fsync=1', '--fallocate=none'];
  const job = (name: string, rw: string, bs: string, extra: string[] = []) => [`--name=${name}`, '--stonewall', `--rw=${rw}`, `--bs=${bs}`, ...extra];
  const small = [`--io_size=${o.smallBlocks * SMALL}`];
  return [...g, ...job('seq-write', 'write', '1m'), ...job('seq-read', 'read', '1m'), ...job('rand-write', 'randwrite', '4k', small), ...job('rand-read', 'randread', '4k', small)];
}

/** Pure: the script (POSIX sh: busybox's inside, the host's /bin/sh for the reference) for the targets ('name dir mountpoint' each). */
export function diskScript(fio: string, o: DiskOptions, targets: Array<{ name: string; dir: string; mount: string }>): string {
  const lines = [
    'one() {',
    '  t=$1; F=$2/.hull-contrast-fio',
    '  echo "M|$t|$(grep " $3 " /proc/mounts | head -n 1)"',
    '  if dd if=/dev/zero of=$F bs=4096 count=1 oflag=direct 2>/dev/null; then D=1; m=direct; else D=0; m=buffered; fi',
    '  rm -f $F',
    '  echo "==fio|$t|$m"',
    `  ${fio} --direct=$D --filename=$F ${fioJobArgs(o).join(' ')} 2>&1`,
    '  echo "==end|$t|$?"',
    '  rm -f $F',
    '}',
  ];
  for (const t of targets) lines.push(`one ${t.name} ${t.dir} ${t.mount}`);
  return lines.join('\n');
}

/** Pure: a /proc/mounts line -> 'type (notable options)'. */
export function describeMount(line: string): string {
  const [, , type, opts = ''] = line.trim().split(' ');
  if (!type) return 'unknown';
  const notable = opts.split(',').filter((x) => /^(fsync=|sync$|cache=|trans=|dax)/.test(x));
  return `${type}${notable.length ? ` (${notable.join(',')})` : ''}`;
}

/** The file system `dir` is on, from this process's /proc/mounts (the longest mount point above it). */
export function hostMountOf(dir: string): string {
  let best = '';
  let bestMp = '';
  for (const l of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const mp = (l.split(' ')[1] ?? '').replace(/\\040/g, ' ');
    if (mp && (dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && mp.length >= bestMp.length) {
      best = l;
      bestMp = mp;
    }
  }
  return best ? describeMount(best) : 'unknown';
}

/** Pure: fio's JSON output (one job per test) -> figures. */
export function parseFio(json: string): DiskFigure[] {
  const v = JSON.parse(json) as { jobs?: Array<{ jobname: string; error?: number; read: { bw_bytes: number; iops: number }; write: { bw_bytes: number; iops: number } }> };
  return (v.jobs ?? []).map((j) => {
    const w = j.jobname.endsWith('write');
    const side = w ? j.write : j.read;
    const block = j.jobname.startsWith('seq') ? MiB : SMALL;
    const rate = side.bw_bytes / MiB;
    if (j.error) return { test: j.jobname, blockBytes: block, samples: [], mibPerSec: null, iops: null, error: `fio job error ${j.error}` };
    return { test: j.jobname, blockBytes: block, samples: [rate], mibPerSec: rate, iops: side.iops };
  });
}

export interface TargetRun {
  target: string;
  mode: 'direct' | 'buffered';
  /** The target's /proc/mounts line, as described by describeMount. */
  fs?: string;
  figures?: DiskFigure[];
  error?: string;
}

/** Pure: the script's output -> one run per target (fio's figures, or why there are none). */
export function parseDiskRun(stdout: string): TargetRun[] {
  const out: TargetRun[] = [];
  const fsOf: Record<string, string> = {};
  const re = /^==fio\|([\w-]+)\|(direct|buffered)$([\s\S]*?)^==end\|\1\|(\d+)$/gm;
  for (const l of stdout.split('\n')) {
    const m = /^M\|([\w-]+)\|(.*)$/.exec(l.trim());
    if (m?.[2]) fsOf[m[1]!] = describeMount(m[2]);
  }
  for (const m of stdout.matchAll(re)) {
    const [, target, mode, body = '', rc] = m;
    const run: TargetRun = { target: target!, mode: mode as TargetRun['mode'], fs: fsOf[target!] };
    const a = body.indexOf('{');
    const b = body.lastIndexOf('}');
    try {
      if (rc !== '0') throw new Error(`fio exited with ${rc}: ${body.split('\n').map((x) => x.trim()).find((x) => /^fio:|error|denied|No such/i.test(x)) ?? (lastLine(body) || 'no output')}`);
      if (a < 0 || b < a) throw new Error(`fio printed no JSON: ${lastLine(body) || 'no output'}`);
      run.figures = parseFio(body.slice(a, b + 1));
    } catch (e) {
      run.error = (e as Error).message;
    }
    out.push(run);
  }
  return out;
}

/** Pure: the rounds' figures of one row -> medians (MiB/s and IOPS) with every sample kept. */
export function mergeFigures(a: DiskFigure[], b: DiskFigure[]): DiskFigure[] {
  if (!a.length) return b;
  return a.map((f) => {
    const g = b.find((x) => x.test === f.test);
    const samples = [...f.samples, ...(g?.samples ?? [])];
    const med = samples.length ? median(samples) : null;
    return { ...f, samples, mibPerSec: med, iops: med === null ? null : (med * MiB) / f.blockBytes, error: med === null ? f.error ?? g?.error : undefined };
  });
}

export const PAGE_CACHE =
  "fio runs --direct=1 (O_DIRECT: around the page cache) where the file system takes it, tried with one 4 KiB dd oflag=direct; where it does not (a VM's root: an overlay on a tmpfs upper dir in guest RAM) the row says 'buffered' and fio runs --direct=0: writes land in the page cache and reads come back from it; every write job ends with fsync (end_fsync=1), but a container's overlay mounted fsync=volatile returns from fsync without flushing; a VM's volume is 9p, uncached (cache=none) and synchronous";

export async function diskScenario(drivers: Driver[], root: string, o: DiskOptions, accelOf: (wall: string) => Accel, progress: (l: string) => void, signal?: AbortSignal): Promise<DiskResult> {
  fs.mkdirSync(layout(root).tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(layout(root).tmp, 'contrast-disk-'));
  const rows = new Map<string, DiskRow>();
  const notes: string[] = [];
  const row = (wall: string, target: 'root' | 'volume') => {
    const k = `${wall}/${target}`;
    if (!rows.has(k)) rows.set(k, { wall, accel: wall === 'host' ? 'native' : accelOf(wall), target, fs: 'unknown', tool: DISK_TOOL, figures: [] });
    return rows.get(k)!;
  };
  const hull = drivers.filter((d) => d.kind === 'hull' && d.probe);
  let hostFs = 'unknown';
  let binary = '';
  try {
    const tools = path.join(dir, 'tools');
    fs.mkdirSync(tools);
    const { loader, bytes } = await shipTools(tools, ['fio']);
    binary = `${shippedCommand(DISK_TOOLS_PATH, loader, 'fio')} (${(bytes / MiB).toFixed(0)} MiB with its libraries)`;
    const hostDir = path.join(dir, 'host');
    fs.mkdirSync(hostDir);
    hostFs = hostMountOf(hostDir);
    for (let round = 1; round <= o.rounds; round++) {
      checkAbort(signal);
      // the host reference: the same script and the same shipped fio, with the host's sh and dd
      const r = await timedRun('/bin/sh', ['-c', diskScript(shippedCommand(tools, loader, 'fio'), o, [{ name: 'volume', dir: hostDir, mount: '-' }])], { timeoutMs: 600_000 });
      collect('host', r.code === 0 ? r.stdout : undefined, lastLine(r.stderr) || `exit ${r.code}`);
      for (const d of hull) {
        checkAbort(signal);
        const script = diskScript(shippedCommand(DISK_TOOLS_PATH, loader, 'fio'), o, [{ name: 'root', dir: '/tmp', mount: '/' }, { name: 'volume', dir: VOLUME_PATH, mount: VOLUME_PATH }]);
        const p = await d.probe!(script, { volumes: [[tools, `${DISK_TOOLS_PATH}:ro`]], anonymousVolume: VOLUME_PATH, memoryBytes: DISK_MEMORY, timeoutMs: 600_000 });
        collect(d.name, p.stdout || undefined, p.error ?? 'failed');
      }
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    notes.push(`disk not measured: ${(e as Error).message}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  function collect(wall: string, stdout: string | undefined, error: string) {
    const runs = stdout === undefined ? [] : parseDiskRun(stdout);
    const targets = wall === 'host' ? (['volume'] as const) : (['root', 'volume'] as const);
    for (const t of targets) {
      const r = row(wall, t);
      const run = runs.find((x) => x.target === t);
      if (!run || run.error || !run.figures) {
        r.error ??= run?.error ?? error;
        progress(`disk ${wall} ${t}: failed: ${run?.error ?? error}`);
        continue;
      }
      r.figures = mergeFigures(r.figures, run.figures);
      r.fs = `${wall === 'host' ? hostFs : run.fs ?? 'unknown'}; ${run.mode === 'buffered' ? 'no O_DIRECT: buffered' : 'O_DIRECT'}`;
      progress(`disk ${wall} ${t}: ${run.figures.map((f) => `${f.test} ${f.mibPerSec === null ? '-' : f.blockBytes < MiB ? `${f.iops!.toFixed(0)} IOPS` : `${f.mibPerSec.toFixed(0)} MiB/s`}`).join(', ')}`);
    }
  }
  // a row whose later rounds worked keeps their figures; its error stays only when nothing was measured
  for (const r of rows.values()) if (r.figures.some((f) => f.mibPerSec !== null)) delete r.error;
  return {
    fileBytes: o.seqMiB * MiB,
    rows: [...rows.values()],
    pageCache: PAGE_CACHE,
    how: `${o.rounds} rounds interleaved (the host, then one 'run --rm' instance per wall doing its root (/tmp) and an anonymous volume of the run): fio jobs one after the other, sequential write and read of ${o.seqMiB} MiB in 1 MiB blocks, random write and read of ${o.smallBlocks} x 4 KiB over the same file, psync, timed by fio's own clock; the same fio binary on the host and inside: ${binary || "the host's fio"}; medians of the rounds`,
    notes,
  };
}
