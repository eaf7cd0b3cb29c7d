/**
 * The container wall's state() from its files, in the moments between the events of a run:
 * each answer decides whether the engine records an exit, and which.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createContainerIsolation } from '../../src/runtime/container/index.js';
import type { InstanceSpec } from '../../src/runtime/types.js';

function fixture() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-unit-cstate-'));
  const id = 'c'.repeat(64);
  const dir = path.join(root, 'containers', id);
  fs.mkdirSync(path.join(dir, 'exit'), { recursive: true });
  const spec = { id, dir, runtime: 'crun' } as unknown as InstanceSpec;
  // a stand-in monitor: a live process whose command line names the container, as conmon's does
  const monitor = spawn('sh', ['-c', 'sleep 60', id], { stdio: 'ignore' });
  fs.writeFileSync(path.join(dir, 'conmon.pid'), String(monitor.pid));
  const deadPid = Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
  return { root, id, dir, spec, monitor, deadPid, done: () => (monitor.kill('SIGKILL'), fs.rmSync(root, { recursive: true, force: true })) };
}

test('state: process ended, monitor about to write the exit file: still running, not a start cut short', async () => {
  const f = fixture();
  try {
    const iso = createContainerIsolation(f.root);
    fs.writeFileSync(path.join(f.dir, 'pid'), String(f.deadPid));
    const st = await iso.state(f.spec);
    assert.equal(st.running, true);
    assert.equal(st.running && st.pending, undefined, 'not pending: it was started');
    fs.writeFileSync(path.join(f.dir, 'exit', f.id), '0');
    const after = await iso.state(f.spec);
    assert.deepEqual(after.running ? 'running' : after.exit.exitCode, 0, 'then the exit file decides');
  } finally {
    f.done();
  }
});

test('state: monitor alive and no pid yet, or created and never started: pending', async () => {
  const f = fixture();
  try {
    const iso = createContainerIsolation(f.root);
    let st = await iso.state(f.spec);
    assert.ok(st.running && st.pending, 'monitor started, no process yet');
    fs.writeFileSync(path.join(f.dir, 'pid'), String(f.deadPid));
    fs.mkdirSync(path.join(f.root, 'run', 'crun', f.id), { recursive: true });
    fs.writeFileSync(path.join(f.root, 'run', 'crun', f.id, 'exec.fifo'), '');
    st = await iso.state(f.spec);
    assert.ok(st.running && st.pending, 'created (exec.fifo still there), never started');
    f.monitor.kill('SIGKILL');
    await new Promise((r) => f.monitor.once('exit', r));
    const gone = await iso.state(f.spec);
    assert.ok(!gone.running && gone.exit.exitCode === 255, 'monitor gone without an exit code');
  } finally {
    f.done();
  }
});
