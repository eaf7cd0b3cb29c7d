/**
 * Process groups: a SIGKILLed group counts as ended only when every member has ended, not when
 * its leader has (rm -f waits for QEMU and hull-vmmux, not only the monitor shell).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { groupMembers, killGroup } from '../../src/util/proc.js';

test('groupMembers lists a group\'s live members and none once all of them have ended', async () => {
  // a leader shell with two children in its group
  const c = spawn('sh', ['-c', 'sleep 100 & sleep 100 & echo ready; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
  const pgid = c.pid!;
  const members = groupMembers(pgid);
  assert.equal(members.length, 3, `leader and two sleeps: ${members.join(' ')}`);
  assert.ok(members.includes(pgid));
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  assert.equal(killGroup(pgid, 'SIGKILL'), true);
  await exited; // the leader is reaped by us; the sleeps are reaped by init
  for (let i = 0; i < 400 && groupMembers(pgid).length; i++) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(groupMembers(pgid), []);
  assert.deepEqual(groupMembers(0), [], 'no group 0');
  assert.deepEqual(groupMembers(1), [], 'never init\'s');
});
