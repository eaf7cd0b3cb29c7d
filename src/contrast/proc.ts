/**
 * Host process facts from /proc: the process table, process trees, and proportional set size
 * (PSS) from smaps_rollup / smaps. Parsers are pure; the readers are thin.
 */
import fs from 'node:fs';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Short name from /proc/PID/stat (at most 15 characters). */
  comm: string;
  /** NUL-separated command line joined with spaces ('' for kernel threads). */
  cmdline: string;
}

/** Parse /proc/PID/stat: `pid (comm) state ppid ...`; comm may hold spaces and parentheses. */
export function parseStat(text: string): { pid: number; comm: string; ppid: number } | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid)) return undefined;
  return { pid, comm: text.slice(open + 1, close), ppid };
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every process visible in this pid namespace (processes that exit while read are skipped). */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readText(`/proc/${name}/stat`);
    const p = st && parseStat(st);
    if (!p) continue;
    const cmd = readText(`/proc/${name}/cmdline`) ?? '';
    out.push({ ...p, cmdline: cmd.replace(/\0+$/, '').split('\0').join(' ') });
  }
  return out;
}

/** `root` and every process below it in the table. */
export function subtree(procs: readonly ProcInfo[], root: number): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const l = children.get(p.ppid) ?? [];
    l.push(p);
    children.set(p.ppid, l);
  }
  const out: ProcInfo[] = [];
  const seen = new Set<number>();
  const self = procs.find((p) => p.pid === root);
  const stack = self ? [self] : [];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p.pid)) continue;
    seen.add(p.pid);
    out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/**
 * The host processes of one instance: the processes whose command line names the instance id
 * (its monitor: conmon `-c ID`, or QEMU with the instance directory in its argv) and everything
 * below them, plus the instance's main pid and everything below it. Sorted by pid.
 */
export function instanceProcesses(procs: readonly ProcInfo[], id: string, mainPid: number | undefined, selfPid = process.pid): ProcInfo[] {
  const byPid = new Map<number, ProcInfo>();
  const roots = procs.filter((p) => p.pid !== selfPid && id.length >= 12 && p.cmdline.includes(id) && !isHullCli(p));
  if (mainPid && mainPid > 0) {
    const main = procs.find((p) => p.pid === mainPid);
    if (main) roots.push(main);
  }
  for (const r of roots) for (const p of subtree(procs, r.pid)) byPid.set(p.pid, p);
  return [...byPid.values()].sort((a, b) => a.pid - b.pid);
}

/** A hull CLI process (node running bin/hull-boot.cjs, or bin/hull itself), e.g. the `run` that named the instance: not part of it. */
function isHullCli(p: ProcInfo): boolean {
  // The program and its script, not any word of the command line: conmon's own command line
  // names node and bin/hull-boot.cjs too (as its exit command), and it is part of the instance.
  const [prog, script] = p.cmdline.split(' ');
  return /(^|\/)node(js)?$/.test(prog ?? '') && /(^|\/)bin\/hull(-boot\.cjs)?$/.test(script ?? '');
}

export interface PssFigures {
  /** Resident set size, bytes. */
  rss: number;
  /** Proportional set size, bytes: private pages plus an equal share of each shared page. */
  pss: number;
  pssAnon: number;
  pssFile: number;
  pssShmem: number;
}

const KB = 1024;

/** Parse /proc/PID/smaps_rollup (kB figures) into bytes. */
export function parseSmapsRollup(text: string): PssFigures {
  const get = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * KB : 0;
  };
  return { rss: get('Rss'), pss: get('Pss'), pssAnon: get('Pss_Anon'), pssFile: get('Pss_File'), pssShmem: get('Pss_Shmem') };
}

export function readPss(pid: number): PssFigures | undefined {
  const t = readText(`/proc/${pid}/smaps_rollup`);
  return t ? parseSmapsRollup(t) : undefined;
}

export interface Mapping {
  start: bigint;
  end: bigint;
  /** Mapping size, bytes. */
  size: number;
  /** Path or [heap]/[stack]/memfd name; '' for anonymous. */
  name: string;
  /** Bytes. */
  pss: number;
  rss: number;
}

/** Parse /proc/PID/smaps: one Mapping per `start-end perms ...` header with its Pss/Rss lines. */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split('\n')) {
    const h = /^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
    if (h) {
      const start = BigInt(`0x${h[1]}`);
      const end = BigInt(`0x${h[2]}`);
      cur = { start, end, size: Number(end - start), name: h[3]!.trim(), pss: 0, rss: 0 };
      out.push(cur);
      continue;
    }
    const f = /^(Pss|Rss):\s+(\d+) kB/.exec(line);
    if (f && cur) {
      if (f[1] === 'Pss') cur.pss = Number(f[2]) * KB;
      else cur.rss = Number(f[2]) * KB;
    }
  }
  return out;
}

export function readSmaps(pid: number): Mapping[] | undefined {
  const t = readText(`/proc/${pid}/smaps`);
  return t ? parseSmaps(t) : undefined;
}

/**
 * The mapping that holds a VM's guest RAM: QEMU maps guest memory as one region of exactly the
 * guest's size (anonymous, or a memfd/file backend). Picks the largest mapping of `guestBytes`
 * (rounded to pages); undefined when none matches.
 */
export function guestRamMapping(maps: readonly Mapping[], guestBytes: number): Mapping | undefined {
  const want = Math.ceil(guestBytes / 4096) * 4096;
  const exact = maps.filter((m) => m.size === want);
  if (exact.length) return exact.sort((a, b) => b.pss - a.pss)[0];
  return undefined;
}
