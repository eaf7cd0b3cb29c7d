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

/** The file whose time says when a bridge was last used (a start on it, or an end). */
export function activityFile(lock: string, bridge: string): string {
  return `${lock}.${bridge}`;
}

/** Notes a use of these bridges now (the cleanup leaves each alone for IDLE_DELAY_S after). */
export function touchActivity(lock: string, bridges: string[]): void {
  for (const b of bridges) {
    try {
      fs.writeFileSync(activityFile(lock, b), '');
    } catch {
      /* the lock directory is made by the first lock */
    }
  }
}

/** An interface name that may go into a script unquoted (IFNAMSIZ-1 characters, no shell ones). */
function safeIfName(x: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(x);
}

/**
 * The shell script of the cleanup (pure): every given bridge that has no port and was not used
 * within the delay (such a use schedules a cleanup of its own) goes, with its activity file;
 * then the table, when no bridge of the root is left.
 */
export function idleScript(bridges: string[], prefix: string, table: string, lock: string, delayS = IDLE_DELAY_S): string {
  const lines = ['now=$(date +%s.%N)'];
  for (const b of bridges.filter(safeIfName)) {
    const used = shq(activityFile(lock, b));
    lines.push(
      `last=$(stat -c %.9Y ${used} 2>/dev/null || echo 0)`,
      `if awk -v n="$now" -v l="$last" 'BEGIN { exit !(n - l >= ${delayS}) }' && [ -d /sys/class/net/${b} ] && [ -z "$(ls /sys/class/net/${b}/brif)" ]; then ip link del dev ${b}; rm -f ${used}; fi`,
    );
  }
  if (safeIfName(prefix) && /^[a-z0-9_]+$/.test(table)) {
    lines.push(`set -- /sys/class/net/${prefix}*`, `[ -e "$1" ] || { nft list table ip ${table} >/dev/null 2>&1 && nft delete table ip ${table}; }`);
  }
  return lines.join('\n');
}

/**
 * Whether the cleanup has anything to do (pure; a shell test, true when it may): a bridge that
 * exists with no port and whole seconds since its last use >= the delay (never false for a
 * bridge idle that long), or no bridge of the root left while its table is. Judged without the
 * lock, so back-to-back runs, each of which schedules a cleanup, do not queue one lock holder
 * per run in front of the next start: a bridge used meanwhile is left to the cleanup that use
 * scheduled. The script under the lock judges again, exactly.
 */
export function idleNeeded(bridges: string[], prefix: string, table: string, lock: string, delayS = IDLE_DELAY_S): string {
  const lines = ['now=$(date +%s)'];
  for (const b of bridges.filter(safeIfName)) {
    lines.push(
      `[ -d /sys/class/net/${b} ] && [ -z "$(ls /sys/class/net/${b}/brif)" ] && [ $((now - $(stat -c %Y ${shq(activityFile(lock, b))} 2>/dev/null || echo 0))) -ge ${delayS} ] && exit 0`,
    );
  }
  if (safeIfName(prefix) && /^[a-z0-9_]+$/.test(table)) lines.push(`set -- /sys/class/net/${prefix}*`, `[ -e "$1" ] || { nft list table ip ${table} >/dev/null 2>&1 && exit 0; }`);
  lines.push('exit 1');
  return lines.join('\n');
}

/**
 * How the delayed cleanup is started (pure): a detached shell in `/`, so that it holds no
 * directory of the caller (an exit hook runs inside the container's directory, which `rm`
 * removes) and belongs to no root: it works on machine-wide names under the network lock,
 * which it takes only when there is something to do (idleNeeded).
 */
export function idleCleanupCommand(lock: string, bridges: string[], prefix: string, table: string, delayS = IDLE_DELAY_S): { file: string; args: string[]; options: { cwd: string; detached: true; stdio: 'ignore' } } {
  const needed = shq(idleNeeded(bridges, prefix, table, lock, delayS));
  const script = `sleep ${delayS}; sh -c ${needed} || exit 0; exec flock ${shq(lock)} sh -c ${shq(idleScript(bridges, prefix, table, lock, delayS))}`;
  return { file: 'sh', args: ['-c', script], options: { cwd: '/', detached: true, stdio: 'ignore' } };
}

/** Starts the delayed cleanup in the background (detached: it outlives the caller). */
export function scheduleIdleCleanup(lock: string, bridges: string[], prefix: string, table: string, delayS = IDLE_DELAY_S): void {
  const c0 = idleCleanupCommand(lock, bridges, prefix, table, delayS);
  const c = spawn(c0.file, c0.args, c0.options);
  c.on('error', () => undefined);
  c.unref();
}
