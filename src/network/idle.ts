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
import { shq } from './netns.js';

/** Seconds between the last container leaving a bridge and the bridge's removal. */
export const IDLE_DELAY_S = 1;

/** The shell script of the cleanup (pure). */
export function idleScript(bridges: string[], prefix: string, table: string): string {
  const ok = (x: string) => /^[A-Za-z0-9_.-]{1,15}$/.test(x);
  const lines = bridges.filter(ok).map((b) => `if [ -d /sys/class/net/${b} ] && [ -z "$(ls /sys/class/net/${b}/brif)" ]; then ip link del dev ${b}; fi`);
  if (ok(prefix) && /^[a-z0-9_]+$/.test(table)) {
    lines.push(`set -- /sys/class/net/${prefix}*`, `[ -e "$1" ] || { nft list table ip ${table} >/dev/null 2>&1 && nft delete table ip ${table}; }`);
  }
  return lines.join('\n');
}

/** Starts the delayed cleanup in the background (detached: it outlives the caller). */
export function scheduleIdleCleanup(lock: string, bridges: string[], prefix: string, table: string, delayS = IDLE_DELAY_S): void {
  const script = `sleep ${delayS}; exec flock ${shq(lock)} sh -c ${shq(idleScript(bridges, prefix, table))}`;
  const c = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  c.on('error', () => undefined);
  c.unref();
}
