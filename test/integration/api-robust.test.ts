/**
 * hull serve under abuse: malformed, oversized and unknown requests get docker's JSON errors;
 * clients that vanish mid-attach or mid-pull leave a healthy server and correct containers;
 * 50 concurrent `docker run --rm` all get their own exit codes and the server's memory comes
 * back to its baseline.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { haveRegistry, startRegistry } from '../helpers/registry.js';
import { docker, dockerAsync, haveDocker, monitorsOf, ping, removeAll, request, startServe, type Serve } from './api-harness.js';

const have = haveDocker();
let tmp: TempRoot;
let s: Serve;

before(async () => {
  if (!have) return;
  tmp = makeTempRoot('hull-api-robust-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root, { env: { NODE_OPTIONS: '--expose-gc' } });
});

after(async () => {
  if (!have) return;
  removeAll(s);
  await s.stop();
  assert.deepEqual(monitorsOf(tmp.root), [], 'no container monitor left running');
  tmp.cleanup();
});

const skip = (t: { skip(m: string): void }) => t.skip('the docker CLI is not installed');
const json = (b: string) => JSON.parse(b) as { message: string };

test('ping, versions, unknown routes, methods', async (t) => {
  if (!have) return skip(t);
  const p = await request(s.socket, 'GET', '/_ping');
  assert.equal(p.status, 200);
  assert.equal(p.body, 'OK');
  assert.equal(p.headers['api-version'], '1.45');
  assert.equal(p.headers.ostype, 'linux');
  assert.equal(p.headers['docker-experimental'], 'false');
  const h = await request(s.socket, 'HEAD', '/_ping');
  assert.equal(h.status, 200);
  assert.equal(h.body, '');
  assert.equal((await request(s.socket, 'GET', '/v1.24/version')).status, 200);
  const tooNew = await request(s.socket, 'GET', '/v1.99/version');
  assert.equal(tooNew.status, 400);
  assert.match(json(tooNew.body).message, /too new/);
  const tooOld = await request(s.socket, 'GET', '/v1.12/version');
  assert.equal(tooOld.status, 400);
  const nf = await request(s.socket, 'GET', '/v1.45/no/such/route');
  assert.equal(nf.status, 404);
  assert.equal(typeof json(nf.body).message, 'string');
  const m = await request(s.socket, 'PUT', '/_ping');
  assert.equal(m.status, 405);
  const swarm = await request(s.socket, 'GET', '/v1.45/swarm');
  assert.equal(swarm.status, 501);
  assert.match(json(swarm.body).message, /does not implement GET \/swarm/);
  assert.equal(fs.statSync(s.socket).mode & 0o777, 0o660, 'the socket is mode 0660');
  const up = await request(s.socket, 'GET', '/containers/json', undefined, { Connection: 'Upgrade', Upgrade: 'tcp' });
  assert.equal(up.status, 400, 'a route that cannot hijack refuses an upgrade');
});

test('malformed JSON is 400, oversized bodies 413, bad ids 404, bad parameters 400', async (t) => {
  if (!have) return skip(t);
  const bad = await request(s.socket, 'POST', '/containers/create', '{"Image": "busybox",');
  assert.equal(bad.status, 400);
  assert.match(json(bad.body).message, /invalid JSON/);
  const notObj = await request(s.socket, 'POST', '/containers/create', '[1,2]');
  assert.equal(notObj.status, 400);
  const wrongType = await request(s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', Cmd: 5 }));
  assert.equal(wrongType.status, 400);
  assert.match(json(wrongType.body).message, /Cmd/);
  const huge = await request(s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', Env: ['X='.padEnd(2 * 1024 * 1024, 'x')] }));
  assert.equal(huge.status, 413);
  const unsupported = await request(s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', HostConfig: { DeviceCgroupRules: ['c 1:3 rwm'] } }));
  assert.equal(unsupported.status, 400);
  assert.match(json(unsupported.body).message, /DeviceCgroupRules/);
  const noImage = await request(s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'no-such-image:1' }));
  assert.equal(noImage.status, 404);
  assert.match(json(noImage.body).message, /No such image: no-such-image:1/);
  const id = '0123456789ab';
  for (const [m, p] of [
    ['GET', `/containers/${id}/json`],
    ['POST', `/containers/${id}/start`],
    ['POST', `/containers/${id}/stop`],
    ['POST', `/containers/${id}/kill`],
    ['POST', `/containers/${id}/wait`],
    ['POST', `/containers/${id}/attach?stream=1&stdout=1`],
    ['GET', `/containers/${id}/logs?stdout=1`],
    ['DELETE', `/containers/${id}`],
    ['GET', '/images/no-such:image/json'],
    ['DELETE', '/images/no-such:image'],
    ['GET', '/exec/deadbeef/json'],
  ] as const) {
    const r = await request(s.socket, m, p);
    assert.equal(r.status, 404, `${m} ${p}: ${r.body}`);
    assert.match(json(r.body).message, /No such/);
  }
  const cond = await request(s.socket, 'POST', '/containers/x/wait?condition=sometime');
  assert.equal(cond.status, 400);
  const filt = await request(s.socket, 'GET', '/containers/json?filters=notjson');
  assert.equal(filt.status, 400);
  const re = await request(s.socket, 'GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ name: ['(['] }))}`);
  assert.equal(re.status, 400);
  const boolp = await request(s.socket, 'GET', '/containers/json?all=maybe');
  assert.equal(boolp.status, 400);
  assert.ok(await ping(s.socket), 'the server is still healthy');
});

test('a client that disconnects mid-attach leaves the container running to its normal end', async (t) => {
  if (!have) return skip(t);
  const c = await request(s.socket, 'POST', '/containers/create?name=quitter', JSON.stringify({ Image: 'busybox', Cmd: ['sh', '-c', 'sleep 1; echo done; exit 6'] }));
  assert.equal(c.status, 201, c.body);
  // A raw hijacked attach that goes away right after the upgrade.
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect(s.socket, () => {
      sock.write('POST /v1.45/containers/quitter/attach?stream=1&stdout=1&stderr=1&stdin=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    });
    sock.once('data', (d) => {
      assert.match(d.toString(), /^HTTP\/1.1 101 UPGRADED\r\n/);
      assert.match(d.toString(), /Content-Type: application\/vnd.docker.multiplexed-stream/);
      sock.destroy();
      resolve();
    });
    sock.on('error', reject);
  });
  assert.equal((await request(s.socket, 'POST', '/containers/quitter/start')).status, 204);
  const w = await request(s.socket, 'POST', '/containers/quitter/wait');
  assert.equal(w.status, 200);
  assert.equal(JSON.parse(w.body).StatusCode, 6);
  const logs = docker(s, ['logs', 'quitter']);
  assert.equal(logs.stdout, 'done\n');
  assert.equal(docker(s, ['rm', 'quitter']).code, 0);
  assert.ok(await ping(s.socket));
});

test('a client that disconnects mid-pull leaves a healthy server and a consistent store', async (t) => {
  if (!have) return skip(t);
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry();
  try {
    const name = `${reg.host}/robust/busybox:1`;
    assert.equal(docker(s, ['tag', 'busybox', name]).code, 0);
    assert.equal(docker(s, ['push', name]).code, 0);
    assert.equal(docker(s, ['rmi', name]).code, 0);
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(s.socket, () => {
        sock.write(`POST /v1.45/images/create?fromImage=${encodeURIComponent(`${reg.host}/robust/busybox`)}&tag=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
      });
      sock.once('data', () => {
        sock.destroy();
        resolve();
      });
      sock.on('error', reject);
    });
    assert.ok(await ping(s.socket));
    // Either the abandoned pull finished, or a new one does now; the image must run either way.
    const q = docker(s, ['pull', name]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(docker(s, ['run', '--rm', name, 'echo', 'ok']).stdout, 'ok\n');
    assert.equal(docker(s, ['rmi', name]).code, 0);
  } finally {
    await reg.stop();
  }
});

async function serverState(): Promise<{ memory: NodeJS.MemoryUsage; gcRan: boolean; state: Record<string, number>; execs: { running: number } }> {
  return JSON.parse((await request(s.socket, 'GET', '/_hull/state')).body);
}

test('50 concurrent docker run --rm: every exit code right, nothing left, memory back to baseline', async (t) => {
  if (!have) return skip(t);
  // Warm up (module loading, statement caches), then take the baseline.
  for (let i = 0; i < 3; i++) assert.equal(docker(s, ['run', '--rm', 'busybox', 'true']).code, 0);
  const base = await serverState();
  assert.ok(base.gcRan, 'the server runs with --expose-gc');
  const runs = Array.from({ length: 50 }, (_, i) => dockerAsync(s, ['run', '--rm', 'busybox', 'sh', '-c', `exit ${i % 7}`]));
  const results = await Promise.all(runs);
  results.forEach((r, i) => assert.equal(r.code, i % 7, `run ${i}: ${r.stderr}`));
  assert.equal(docker(s, ['ps', '-aq']).stdout, '', 'every --rm container is gone');
  // Auto-removal and watchers finish just after the clients; give them a moment.
  let after = await serverState();
  for (let i = 0; i < 50 && (after.state.exitWatchers > 0 || after.state.attachedContainers > 0); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await serverState();
  }
  assert.equal(after.state.exitWatchers, 0);
  assert.equal(after.state.attachedContainers, 0);
  assert.ok(after.state.listeners <= base.state.listeners, `event listeners: ${after.state.listeners} > ${base.state.listeners}`);
  const grew = after.memory.heapUsed - base.memory.heapUsed;
  assert.ok(grew < 4 * 1024 * 1024, `heap grew by ${grew} bytes after 50 runs`);
  assert.ok(await ping(s.socket));
});
