/**
 * Bridges with nothing on them, and the root's firewall table once no bridge of the root is
 * left, are removed a moment after the last container left (IDLE_DELAY_S), not at once: deleting
 * a bridge waits for an RCU grace period (~30-40 ms here) and making it again costs a plugin run,
 * so back-to-back runs keep theirs. A small detached shell does it under the root's network lock,
 * judging by the kernel's state (a bridge with no port is idle: every attach happens under the
 * same lock), so it never races a start. The lock lives outside the root, so this works even
 * after the root was removed; nothing is left behind by a root that is deleted meanwhile.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { shq } from './netns.js';

/** Seconds between the last container leaving a bridge and the bridge's removal. */
export const IDLE_DELAY_S = 1;

/** The file whose time says when the root's network was last used (set up or torn down). */
export function activityFile(lock: string): string {
  return `${lock}.used`;
}

/** Notes a use of the root's network now (the cleanup leaves bridges alone for IDLE_DELAY_S). */
export function touchActivity(lock: string): void {
  try {
    fs.writeFileSync(activityFile(lock), '');
  } catch {
    /* the lock directory is made by the first lock */
  }
}

/**
 * The shell script of the cleanup (pure): nothing when the network was used within the delay
 * (that use schedules a cleanup of its own), else every given bridge without a port, then the
 * table when no bridge of the root is left.
 */
export function idleScript(bridges: string[], prefix: string, table: string, used: string, delayS = IDLE_DELAY_S): string {
  const ok = (x: string) => /^[A-Za-z0-9_.-]{1,15}$/.test(x);
  const lines = [
    `now=$(date +%s.%N); last=$(stat -c %.9Y ${shq(used)} 2>/dev/null || echo 0)`,
    `awk -v n="$now" -v l="$last" 'BEGIN { exit !(n - l < ${delayS}) }' && exit 0`,
    ...bridges.filter(ok).map((b) => `if [ -d /sys/class/net/${b} ] && [ -z "$(ls /sys/class/net/${b}/brif)" ]; then ip link del dev ${b}; fi`),
  ];
  if (ok(prefix) && /^[a-z0-9_]+$/.test(table)) {
    lines.push(`set -- /sys/class/net/${prefix}*`, `[ -e "$1" ] || { nft list table ip ${table} >/dev/null 2>&1 && nft delete table ip ${table}; }`);
  }
  return lines.join('\n');
}

/** Starts the delayed cleanup in the background (detached: it outlives the caller). */
export function scheduleIdleCleanup(lock: string, bridges: string[], prefix: string, table: string, delayS = IDLE_DELAY_S): void {
  const script = `sleep ${delayS}; exec flock ${shq(lock)} sh -c ${shq(idleScript(bridges, prefix, table, activityFile(lock), delayS))}`;
  const c = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  c.on('error', () => undefined);
  c.unref();
}
