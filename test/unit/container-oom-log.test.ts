/** The kernel-log reading behind OOMKilled of foreground runs (crun has removed their cgroup). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isOomKillRecordFor, kernelLogOomKill } from '../../src/runtime/container/cgroups.js';

const ID = 'afd5d25b8cc7c1b596e3fe7c5647ffb8622474ed70d1c69fde9061cc0d8a05f1';
// as read from /dev/kmsg on this machine's 6.18 kernel (cgroup v1 memory hierarchy)
const RECORD = `6,3432,10718114396,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=${ID},mems_allowed=0,oom_memcg=/hull/${ID},task_memcg=/hull/${ID},task=sh,pid=19157,uid=0\n`;

test('an oom-kill record names the memory cgroup it happened in', () => {
  assert.equal(isOomKillRecordFor(RECORD, `/hull/${ID}`), true);
  // another container, a prefix of the id, a record of another kind
  assert.equal(isOomKillRecordFor(RECORD, `/hull/${ID.slice(0, 12)}`), false);
  assert.equal(isOomKillRecordFor(RECORD, '/hull/0000'), false);
  assert.equal(isOomKillRecordFor(`3,3433,10718114413,-;Memory cgroup out of memory: Killed process 19157 (sh) total-vm:145632kB /hull/${ID}\n`, `/hull/${ID}`), false);
  // a task in a child cgroup of the limited one: the limit's cgroup is oom_memcg
  const child = RECORD.replace(`task_memcg=/hull/${ID}`, `task_memcg=/hull/${ID}/sub`);
  assert.equal(isOomKillRecordFor(child, `/hull/${ID}`), true);
});

test('kernelLogOomKill reads records until there are no more, and is false when it cannot read', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-kmsg-'));
  try {
    // a regular file returns its whole content in one read, then 0: enough to check the loop
    const f = path.join(dir, 'log');
    fs.writeFileSync(f, RECORD);
    assert.equal(kernelLogOomKill(`/hull/${ID}`, f), true);
    assert.equal(kernelLogOomKill('/hull/other', f), false);
    assert.equal(kernelLogOomKill(`/hull/${ID}`, path.join(dir, 'missing')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
