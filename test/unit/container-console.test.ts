/**
 * The terminal helper of foreground crun sessions: argv building, resize lines, the runtime's
 * console-socket spelling, and the built helper's own behaviour when no terminal ever comes
 * (the session through crun is in test/integration/containers-flags and api-dockerode).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { consoleArgv, consoleHelper, resizeConsole, resizeRequest } from '../../src/runtime/container/console.js';
import { sub, type RuntimeDriver } from '../../src/runtime/container/runtime.js';

const crun = { name: 'crun' } as RuntimeDriver;
const runc = { name: 'runc' } as RuntimeDriver;

test('consoleArgv: socket, resize FIFO and stdin before the runtime', () => {
  assert.deepEqual(consoleArgv('/h', '/s', ['crun', 'exec', 'x'], { stdin: false }), ['/h', '/s', '--', 'crun', 'exec', 'x']);
  assert.deepEqual(consoleArgv('/h', '/s', ['crun'], { stdin: true, resizeFifo: '/f' }), ['/h', '/s', '--resize', '/f', '--stdin', '--', 'crun']);
});

test('resize lines: two positive integers below 65536, else a named error', () => {
  assert.equal(resizeRequest(24, 80), '24 80\n');
  for (const [r, c] of [[0, 80], [24, -1], [1.5, 80], [70000, 80]] as const) {
    assert.throws(() => resizeRequest(r, c), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && e.message.includes(`${r}x${c}`));
  }
  // no reader (the session ended): false, and nothing is created
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-console-unit-'));
  try {
    assert.equal(resizeConsole(path.join(dir, 'gone'), 24, 80), false);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('runtime argv: --console-socket for run and exec; --tty only where the runtime needs it', () => {
  assert.deepEqual(sub.run(crun, '/b', 'id', '/s'), ['run', '--console-socket', '/s', '--bundle', '/b', 'id']);
  assert.deepEqual(sub.run(crun, '/b', 'id'), ['run', '--bundle', '/b', 'id']);
  assert.deepEqual(sub.exec(crun, 'id', '/p.json', true, '/p.pid', '/s'), ['exec', '--process', '/p.json', '--pid-file', '/p.pid', '--console-socket', '/s', 'id']);
  assert.deepEqual(sub.exec(runc, 'id', '/p.json', true, '/p.pid'), ['exec', '--process', '/p.json', '--pid-file', '/p.pid', '--tty', 'id']);
});

test('the helper: a program that never sends a terminal ends it with its own status, and leaves no socket or FIFO', (t) => {
  let helper: string;
  try {
    helper = consoleHelper();
  } catch (e) {
    return t.skip((e as Error).message);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-console-unit-'));
  try {
    // a socket path longer than sun_path (108) works through the directory's descriptor
    const deep = path.join(dir, 'd'.repeat(60), 'e'.repeat(60));
    fs.mkdirSync(deep, { recursive: true });
    const sock = path.join(deep, 'console.sock');
    const fifo = path.join(deep, 'resize');
    const r = spawnSync(helper, [sock, '--resize', fifo, '--', 'sh', '-c', `test -S ${sock} && test -p ${fifo} && exit 3`], { encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.deepEqual(fs.readdirSync(deep), []);
    const killed = spawnSync(helper, [sock, '--', 'sh', '-c', 'kill -TERM $$'], { encoding: 'utf8' });
    assert.equal(killed.status, 128 + os.constants.signals.SIGTERM);
    const missing = spawnSync(helper, [sock, '--', path.join(dir, 'no-such-program')], { encoding: 'utf8' });
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /cannot run .*no-such-program/);
    for (const bad of [[sock], [sock, '--size', '24,80', '--', 'true'], [sock, '--bogus', '--', 'true'], [sock, '--']]) {
      const b = spawnSync(helper, bad, { encoding: 'utf8' });
      assert.equal(b.status, 125, bad.join(' '));
      assert.match(b.stderr, /hull-console: |usage: /);
    }
    assert.deepEqual(fs.readdirSync(deep), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
