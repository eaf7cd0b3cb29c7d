/**
 * Facts about host processes from /proc, shared by the engine and both walls: whether a pid
 * is alive (a zombie is not), its start time (which tells a reused pid apart), this boot's id
 * (pids of an earlier boot mean nothing now), and a process's identity as one string.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** State letter, process group and start time (clock ticks after boot) of `pid`, or undefined when it is gone. */
function stat(pid: number): { state: string; pgrp: number; startTime: number } | undefined {
  if (!(pid > 0)) return undefined;
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '', pgrp: Number(f[2]), startTime: Number(f[19]) };
  } catch {
    return undefined;
  }
}

/** A process that runs: there, and not a zombie (a zombie runs nothing). */
function runs(s: { state: string } | undefined): boolean {
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

/** Whether `pid` runs (a zombie counts as gone). */
export function pidAlive(pid: number): boolean {
  return runs(stat(pid));
}

/** Start time of a live process (clock ticks after boot); undefined when it is gone or a zombie. */
export function procStartTime(pid: number): number | undefined {
  const s = stat(pid);
  return runs(s) ? s!.startTime : undefined;
}

let boot: string | undefined;
/** This boot's id (/proc/sys/kernel/random/boot_id). */
export function bootId(): string {
  boot ??= fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return boot;
}

/** 'pid:starttime' of a live process, '' when it is gone. */
export function processIdentity(pid: number): string {
  const t = procStartTime(pid);
  return t === undefined ? '' : `${pid}:${t}`;
}

/** Whether the process named by processIdentity() still runs (same pid, same start time). */
export function identityAlive(identity: string): boolean {
  const m = /^(\d+):(\d+)/.exec(identity);
  return !!m && procStartTime(Number(m[1])) === Number(m[2]);
}

/** Send `signal` to process group `pgid`; false when no such group is left. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!(pgid > 1)) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Members of process group `pgid` that still run (zombies excluded). A SIGKILLed group's leader
 * can be gone while a bigger member (QEMU unmapping guest RAM) is still exiting, so a caller
 * that must know the whole group has ended asks this. One kill(2) answers when no process of
 * the group is left at all; only a group that still exists is looked for in /proc.
 */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  if (!(pgid > 1)) return out;
  try {
    process.kill(-pgid, 0);
  } catch {
    return out;
  }
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = stat(Number(e));
    if (runs(s) && s!.pgrp === pgid) out.push(Number(e));
  }
  return out;
}

/**
 * SIGKILL process group `pgid` and wait, up to `timeoutMs`, until none of its members runs.
 * True when the whole group has ended.
 */
export async function killGroupAndWait(pgid: number, timeoutMs: number): Promise<boolean> {
  killGroup(pgid, 'SIGKILL');
  for (const until = Date.now() + timeoutMs; groupMembers(pgid).length; ) {
    if (Date.now() >= until) return false;
    await sleep(5);
  }
  return true;
}

/** Process group of `pid` (undefined when it is gone). */
export function processGroup(pid: number): number | undefined {
  return stat(pid)?.pgrp;
}

/** Live processes whose command line contains `needle` (with their pid and command line). */
export function processesMentioning(needle: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(needle) && pidAlive(pid)) out.push({ pid, cmdline });
  }
  return out;
}
