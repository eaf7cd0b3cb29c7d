/**
 * The disk dimension of a contrast: sequential (1 MiB blocks) and small-block (4 KiB) writes and
 * reads on each wall's root file system and on a volume (a host directory bind-mounted in),
 * with busybox dd inside (O_DIRECT where the file system takes it, buffered where not, said per
 * row); the same busybox dd on the host directory the volumes come from, and fio (Debian) there
 * with sequential and random jobs, as the references. Rounds are interleaved: host, then one
 * instance per wall doing root and volume. Temp files and instances are removed in `finally`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { layout } from '../paths.js';
import { checkAbort } from './abort.js';
import { VOLUME_PATH, type Driver } from './driver.js';
import { findExecutable } from './hostfacts.js';
import { lastLine, timedRun } from './spawn.js';
import { median } from './stats.js';
import type { DiskFigure, DiskResult, DiskRow } from './types.js';

export interface DiskOptions {
  /** Size of the sequential test file, MiB. Default 32 (a VM root is a tmpfs upper dir in guest RAM: it must fit). */
  seqMiB: number;
  /** 4 KiB blocks in the small-block and random tests. Default 2048 (8 MiB). */
  smallBlocks: number;
  /** Interleaved rounds. Default 2. */
  rounds: number;
}

const MiB = 1048576;
const SMALL = 4096;

/** Pure: the dd script for the given targets ('name dir mountpoint' each), run by busybox sh. */
export function diskScript(o: DiskOptions, targets: Array<{ name: string; dir: string; mount: string }>): string {
  const lines = [
    'BB=${BB:-busybox}',
    'x() { n=$1; shift; read a z </proc/uptime; o=$("$@" 2>&1); rc=$?; read b z </proc/uptime; echo "D|$t|$n|$m|$a|$b|$rc"; [ $rc = 0 ] || echo "E|$t|$n|$(echo "$o" | $BB grep -v records | $BB head -n 1)"; }',
    'one() {',
    '  t=$1; F=$2/.hull-contrast-dd',
    '  echo "M|$t|$($BB grep " $3 " /proc/mounts | $BB head -n 1)"',
    '  if $BB dd if=/dev/zero of=$F bs=4096 count=1 oflag=direct 2>/dev/null; then IF=iflag=direct; OF=oflag=direct; m=direct; else IF=; OF=; m=buffered; fi',
    `  x seq-write $BB dd if=/dev/zero of=$F bs=1048576 count=${o.seqMiB} $OF conv=fsync`,
    '  x seq-read $BB dd if=$F of=/dev/null bs=1048576 $IF',
    `  x small-write $BB dd if=/dev/zero of=$F.s bs=4096 count=${o.smallBlocks} $OF conv=fsync`,
    '  x small-read $BB dd if=$F.s of=/dev/null bs=4096 $IF',
    '  $BB rm -f $F $F.s $F.p',
    '}',
  ];
  for (const t of targets) lines.push(`one ${t.name} ${t.dir} ${t.mount}`);
  return lines.join('\n');
}

export interface DdSample {
  target: string;
  test: string;
  mode: 'direct' | 'buffered';
  ms: number;
  ok: boolean;
  /** dd's message when it failed. */
  error?: string;
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

/** Pure: the dd script's output -> samples and what each target is ('fs: mount line'). */
export function parseDisk(stdout: string): { samples: DdSample[]; fs: Record<string, string> } {
  const samples: DdSample[] = [];
  const fsOf: Record<string, string> = {};
  for (const raw of stdout.split('\n')) {
    const l = raw.trim();
    const m = /^M\|([\w-]+)\|(.*)$/.exec(l);
    if (m) {
      if (m[2]) fsOf[m[1]!] = describeMount(m[2]);
      continue;
    }
    const e = /^E\|([\w-]+)\|([\w-]+)\|(.*)$/.exec(l);
    if (e) {
      const s = [...samples].reverse().find((x) => x.target === e[1] && x.test === e[2] && !x.ok);
      if (s) s.error = e[3]!.trim();
      continue;
    }
    const d = /^D\|([\w-]+)\|([\w-]+)\|(direct|buffered)\|([\d.]+)\|([\d.]+)\|(\d+)$/.exec(l);
    if (d) samples.push({ target: d[1]!, test: d[2]!, mode: d[3] as DdSample['mode'], ms: Math.round((Number(d[5]) - Number(d[4])) * 1000), ok: d[6] === '0' });
  }
  return { samples, fs: fsOf };
}

/** Pure: samples of one target -> figures (MiB/s and IOPS at the median; null below the clock's resolution). */
export function ddFigures(samples: DdSample[], o: DiskOptions): DiskFigure[] {
  const out: DiskFigure[] = [];
  for (const test of ['seq-write', 'seq-read', 'small-write', 'small-read']) {
    const mine = samples.filter((s) => s.test === test);
    const block = test.startsWith('seq') ? MiB : SMALL;
    const bytes = test.startsWith('seq') ? o.seqMiB * MiB : o.smallBlocks * SMALL;
    const good = mine.filter((s) => s.ok && s.ms > 0);
    const rates = good.map((s) => bytes / MiB / (s.ms / 1000));
    const med = rates.length ? median(rates) : null;
    const failed = mine.filter((s) => !s.ok).length;
    out.push({
      test,
      blockBytes: block,
      samples: rates,
      mibPerSec: med,
      iops: med === null ? null : (med * MiB) / block,
      error: !mine.length ? 'not run' : failed ? `${failed} of ${mine.length} runs failed${mine.find((x) => x.error)?.error ? `: ${mine.find((x) => x.error)!.error}` : ''}` : !good.length ? 'faster than the 10 ms resolution of /proc/uptime: use a larger file' : undefined,
    });
  }
  return out;
}

/** Pure: fio's JSON output (one job per test) -> figures. */
export function parseFio(json: string): DiskFigure[] {
  const v = JSON.parse(json) as { jobs?: Array<{ jobname: string; 'job options'?: { bs?: string }; read: { bw_bytes: number; iops: number }; write: { bw_bytes: number; iops: number } }> };
  return (v.jobs ?? []).map((j) => {
    const w = j.jobname.endsWith('write');
    const side = w ? j.write : j.read;
    const block = j.jobname.startsWith('seq') ? MiB : SMALL;
    const rate = side.bw_bytes / MiB;
    return { test: j.jobname, blockBytes: block, samples: [rate], mibPerSec: rate, iops: side.iops };
  });
}

/** Pure: fio's arguments: sequential and random jobs one after the other on `file`, O_DIRECT. */
export function fioArgs(file: string, o: DiskOptions): string[] {
  const g = ['--output-format=json', `--filename=${file}`, `--size=${o.seqMiB}m`, '--direct=1', '--ioengine=psync', '--end_fsync=1'];
  const job = (name: string, rw: string, bs: string, extra: string[] = []) => [`--name=${name}`, '--stonewall', `--rw=${rw}`, `--bs=${bs}`, ...extra];
  const small = [`--io_size=${o.smallBlocks * SMALL}`];
  return [...g, ...job('seq-write', 'write', '1m'), ...job('seq-read', 'read', '1m'), ...job('rand-write', 'randwrite', '4k', small), ...job('rand-read', 'randread', '4k', small)];
}

const mergeFigures = (a: DiskFigure[], b: DiskFigure[]): DiskFigure[] =>
  a.length ? a.map((f) => {
    const g = b.find((x) => x.test === f.test);
    const samples = [...f.samples, ...(g?.samples ?? [])];
    const med = samples.length ? median(samples) : null;
    return { ...f, samples, mibPerSec: med, iops: med === null ? null : (med * MiB) / f.blockBytes };
  }) : b;

export async function diskScenario(drivers: Driver[], hostBusybox: string | undefined, root: string, o: DiskOptions, progress: (l: string) => void, signal?: AbortSignal): Promise<DiskResult> {
  fs.mkdirSync(layout(root).tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(layout(root).tmp, 'contrast-disk-'));
  const rows = new Map<string, DiskRow & { dd: DdSample[] }>();
  const notes: string[] = [];
  const row = (wall: string, target: 'root' | 'volume', tool: string) => {
    const k = `${wall}/${target}/${tool}`;
    if (!rows.has(k)) rows.set(k, { wall, target, fs: 'unknown', tool, figures: [], dd: [] });
    return rows.get(k)!;
  };
  const hull = drivers.filter((d) => d.kind === 'hull' && d.probe);
  let hostFs = 'unknown';
  try {
    const hostDir = path.join(dir, 'host');
    fs.mkdirSync(hostDir);
    hostFs = hostMountOf(hostDir);
    const fio = findExecutable('fio');
    if (!fio) notes.push('fio is not installed: no fio reference (apt-get install fio)');
    const hostOk = hostBusybox !== undefined && fs.existsSync(hostBusybox);
    if (!hostOk) notes.push('the image has no /bin/busybox: no busybox dd reference on the host');
    for (let round = 1; round <= o.rounds; round++) {
      if (fio) {
        checkAbort(signal);
        const r = await timedRun(fio, fioArgs(path.join(hostDir, 'fio.dat'), o), { timeoutMs: 600_000 });
        const h = row('host', 'volume', 'fio');
        fs.rmSync(path.join(hostDir, 'fio.dat'), { force: true });
        try {
          if (r.code !== 0) throw new Error(lastLine(r.stderr) || `exit ${r.code}`);
          h.figures = mergeFigures(h.figures, parseFio(r.stdout));
          progress(`disk host fio: ${h.figures.map((f) => `${f.test} ${f.mibPerSec?.toFixed(0)} MiB/s`).join(', ')}`);
        } catch (e) {
          h.error ??= `fio: ${(e as Error).message}`;
        }
      }
      if (hostOk) {
        checkAbort(signal);
        const r = await timedRun(hostBusybox, ['sh', '-c', diskScript(o, [{ name: 'volume', dir: hostDir, mount: '-' }])], { env: { PATH: path.dirname(hostBusybox), BB: hostBusybox }, timeoutMs: 600_000 });
        collect('host', r.code === 0 ? r.stdout : undefined, lastLine(r.stderr) || `exit ${r.code}`, 'busybox dd');
      }
      for (const d of hull) {
        checkAbort(signal);
        const vol = path.join(dir, `vol-${d.name}`);
        fs.mkdirSync(vol, { recursive: true });
        const r = await d.probe!(diskScript(o, [{ name: 'root', dir: '/tmp', mount: '/' }, { name: 'volume', dir: VOLUME_PATH, mount: VOLUME_PATH }]), { volume: vol, timeoutMs: 600_000 });
        collect(d.name, r.ok ? r.stdout : undefined, r.error ?? 'failed', 'busybox dd');
      }
    }
    function collect(wall: string, stdout: string | undefined, error: string, tool: string) {
      if (stdout === undefined) {
        for (const t of wall === 'host' ? (['volume'] as const) : (['root', 'volume'] as const)) row(wall, t, tool).error ??= error;
        progress(`disk ${wall}: failed: ${error}`);
        return;
      }
      const p = parseDisk(stdout);
      for (const t of ['root', 'volume'] as const) {
        const s = p.samples.filter((x) => x.target === t);
        if (!s.length) continue;
        const r = row(wall, t, tool);
        r.dd.push(...s);
        const where = wall === 'host' ? hostFs : p.fs[t] ?? 'unknown';
        r.fs = `${where}${s[0]!.mode === 'buffered' ? '; no O_DIRECT: buffered' : '; O_DIRECT'}`;
        r.figures = ddFigures(r.dd, o);
        progress(`disk ${wall} ${t}: ${r.figures.map((f) => `${f.test} ${f.mibPerSec === null ? '-' : f.mibPerSec.toFixed(0)} MiB/s`).join(', ')}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const r of rows.values()) if (r.wall === 'host' && r.tool === 'fio') r.fs = `${hostFs}; O_DIRECT`;
  return {
    fileBytes: o.seqMiB * MiB,
    rows: [...rows.values()].map(({ dd: _dd, ...r }) => r),
    pageCache:
      "O_DIRECT (dd iflag/oflag=direct, fio --direct=1) bypasses the page cache where the file system takes it; where it does not (a VM's root: a tmpfs upper dir in guest RAM) the row says 'buffered': writes land in the page cache and reads come back from it; every write includes conv=fsync (fio: end_fsync), but a container's overlay mounted fsync=volatile returns from fsync without flushing; a 9p volume is uncached (cache=none) and synchronous",
    how: `${o.rounds} rounds interleaved (fio and busybox dd on the host, then one 'run --rm' instance per wall doing its root (/tmp) and a volume): sequential ${o.seqMiB} MiB in 1 MiB blocks, small-block ${o.smallBlocks} x 4 KiB (busybox dd has no random access: inside, small blocks are sequential; fio's rand-* jobs are random); dd timed by /proc/uptime (10 ms resolution), fio by its own clock; medians of the rounds`,
    notes,
  };
}
