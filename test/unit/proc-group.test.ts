/**
 * Process groups: a SIGKILLed group counts as ended only when every member has ended, not when
 * its leader has (rm -f waits for QEMU and hull-vmmux, not only the monitor shell).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { groupMembers, killGroupAndWait } from '../../src/util/proc.js';

test('groupMembers lists a group\'s live members; killGroupAndWait returns once none of them runs', async () => {
  // a leader shell with two children in its group
  const c = spawn('sh', ['-c', 'sleep 100 & sleep 100 & echo ready; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()));
  const pgid = c.pid!;
  const members = groupMembers(pgid);
  assert.equal(members.length, 3, `leader and two sleeps: ${members.join(' ')}`);
  assert.ok(members.includes(pgid));
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  // a zombie runs nothing: the group has ended before its leader is reaped (by us; the sleeps by init)
  assert.equal(await killGroupAndWait(pgid, 2000), true);
  assert.deepEqual(groupMembers(pgid), []);
  await exited;
  assert.deepEqual(groupMembers(0), [], 'no group 0');
  assert.deepEqual(groupMembers(1), [], 'never init\'s');
});
