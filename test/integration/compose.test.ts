/**
 * docker-compose 1.29 (Debian's package, a real Engine API client no one here wrote) runs a
 * project against `hull serve`: a web service (busybox httpd serving a named volume, a published
 * port, environment), a client that fetches from it by service name on a user network, and a
 * service in a microVM (`runtime: hull-vm`) beside them; up -d, ps, logs, exec, stop, start,
 * up -d again (nothing recreated), down -v with nothing left.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { hull, importBusybox, makeTempRoot, mountsUnder, type TempRoot } from '../helpers/hull.js';
import { assertNoNetwork, freePort, httpGet } from '../helpers/net.js';
import { endServe, startServe, type Serve } from './api-harness.js';

const haveCompose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' }).status === 0;
let tmp: TempRoot;
let s: Serve;
let dir: string;
let port: number;
const PROJECT = 'hullproj';

function composeFile(p: number): string {
  return `version: "3.8"
services:
  web:
    image: busybox
    environment:
      GREETING: hello-from-web
    command: ["sh", "-c", "[ -f /www/index.html ] || echo $$GREETING > /www/index.html; exec httpd -f -p 80 -h /www"]
    volumes:
      - www:/www
    ports:
      - "127.0.0.1:${p}:80"
    networks: [front]
  client:
    image: busybox
    depends_on: [web]
    command: ["sh", "-c", "until wget -q -O - http://web/; do sleep 0.2; done; echo client-done; exec sleep 600"]
    networks: [front]
  vm:
    image: busybox
    runtime: hull-vm
    depends_on: [web]
    command: ["sh", "-c", "until wget -q -O - http://web/; do sleep 0.2; done; echo vm-done; exec sleep 600"]
    networks: [front]
volumes:
  www: {}
networks:
  front: {}
`;
}

before(async () => {
  if (!haveCompose) return;
  tmp = makeTempRoot('hull-compose-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
  dir = fs.mkdtempSync(path.join(tmp.root, 'project-'));
  port = await freePort();
  fs.writeFileSync(path.join(dir, 'docker-compose.yml'), composeFile(port));
});

after(async () => {
  if (!haveCompose) return;
  compose(['down', '-v', '-t', '1']);
  await endServe(s, tmp, { checkMounts: true });
});

function compose(args: string[], timeoutMs = 180_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('docker-compose', ['--no-ansi', ...args], {
    cwd: dir, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL',
    env: { ...s.env, COMPOSE_PROJECT_NAME: PROJECT, COMPOSE_INTERACTIVE_NO_CLI: '1' },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => {
  assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

/** Bounded wait until `docker-compose logs SERVICE` shows `text` (the service prints it once it got its answer). */
async function logsShow(service: string, text: string): Promise<string> {
  const end = Date.now() + 60_000;
  let out = '';
  while (Date.now() < end) {
    out = ok(compose(['logs', '--no-color', service]), 'logs');
    if (out.includes(text)) return out;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`docker-compose logs ${service} never showed ${text}: ${out}`);
}

/** `ps` rows as [name, state]. */
function states(): string[][] {
  const out = ok(compose(['ps']), 'ps');
  return out.split('\n').slice(2).filter(Boolean).map((l) => {
    const name = l.split(/\s+/)[0]!;
    return [name, /\bUp\b/.test(l) ? 'Up' : (/Exit \d+/.exec(l)?.[0] ?? l)];
  });
}

test('up -d: network, volume, three services (one in a microVM); names resolve; ports publish', async (t) => {
  if (!haveCompose) return t.skip('docker-compose is not installed (set-up installs it)');
  const up = compose(['up', '-d']);
  ok(up, 'up -d');
  assert.match(up.stderr, new RegExp(`Creating network "${PROJECT}_front"`));
  assert.match(up.stderr, new RegExp(`Creating volume "${PROJECT}_www"`));
  assert.deepEqual(states(), [[`${PROJECT}_client_1`, 'Up'], [`${PROJECT}_vm_1`, 'Up'], [`${PROJECT}_web_1`, 'Up']]);
  assert.match(await logsShow('client', 'client-done'), /client_1\s+\| hello-from-web/);
  assert.match(await logsShow('vm', 'vm-done'), /vm_1\s+\| hello-from-web/);
  assert.equal(await httpGet('127.0.0.1', port), 'hello-from-web\n', 'the published port answers from the host');
  const vmWall = hull(tmp.root, ['inspect', '-f', '{{.Hull.Isolation}}', `${PROJECT}_vm_1`]);
  assert.equal(vmWall.stdout.trim(), 'vm', 'runtime: hull-vm ran the service in a microVM');
  assert.equal(hull(tmp.root, ['inspect', '-f', '{{.Hull.Isolation}}', `${PROJECT}_web_1`]).stdout.trim(), 'container');
  const vols = JSON.parse(hull(tmp.root, ['inspect', '-f', '{{json .Mounts}}', `${PROJECT}_web_1`]).stdout) as { Name: string }[];
  assert.deepEqual(vols.map((v) => v.Name), [`${PROJECT}_www`]);
});

test('exec in a container and in the microVM; the volume holds what web wrote', (t) => {
  if (!haveCompose) return t.skip('docker-compose is not installed');
  assert.equal(ok(compose(['exec', '-T', 'client', 'wget', '-q', '-O', '-', 'http://web/']), 'exec client'), 'hello-from-web\n');
  assert.equal(ok(compose(['exec', '-T', 'vm', 'wget', '-q', '-O', '-', 'http://web/']), 'exec vm'), 'hello-from-web\n');
  assert.equal(ok(compose(['exec', '-T', 'vm', 'cat', '/proc/version']), 'exec vm kernel').includes(fs.readFileSync('/proc/version', 'utf8').trim()), false, 'the VM has its own kernel');
  assert.equal(fs.readFileSync(path.join(tmp.root, 'volumes', `${PROJECT}_www`, '_data', 'index.html'), 'utf8'), 'hello-from-web\n');
  const env = ok(compose(['exec', '-T', 'web', 'sh', '-c', 'echo $GREETING']), 'exec env');
  assert.equal(env, 'hello-from-web\n');
});

test('stop, start, and up -d again: nothing recreated, the volume kept', async (t) => {
  if (!haveCompose) return t.skip('docker-compose is not installed');
  const ids = () => hull(tmp.root, ['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean).sort();
  const before = ids();
  ok(compose(['stop', '-t', '1']), 'stop');
  for (const [, st] of states()) assert.match(st!, /^Exit \d+$/);
  fs.writeFileSync(path.join(tmp.root, 'volumes', `${PROJECT}_www`, '_data', 'index.html'), 'changed\n');
  ok(compose(['start']), 'start');
  assert.deepEqual(states().map((x) => x[1]), ['Up', 'Up', 'Up']);
  assert.equal(await httpGet('127.0.0.1', port), 'changed\n', 'web serves the kept volume again');
  const again = ok(compose(['up', '-d']), 'up -d again');
  void again;
  assert.deepEqual(ids(), before, 'up -d on a running project recreates nothing');
});

test('down -v: containers, the network and the volume gone; nothing of the project left', async (t) => {
  if (!haveCompose) return t.skip('docker-compose is not installed');
  const down = compose(['down', '-v', '-t', '1']);
  ok(down, 'down -v');
  assert.match(down.stderr, new RegExp(`Removing network ${PROJECT}_front`));
  assert.match(down.stderr, new RegExp(`Removing volume ${PROJECT}_www`));
  assert.equal(hull(tmp.root, ['ps', '-aq']).stdout, '');
  assert.equal(hull(tmp.root, ['volume', 'ls', '-q']).stdout, '');
  assert.deepEqual(hull(tmp.root, ['network', 'ls', '--format', '{{.Name}}']).stdout.split('\n').filter(Boolean).sort(), ['bridge', 'host', 'none']);
  assert.equal(fs.existsSync(path.join(tmp.root, 'volumes', `${PROJECT}_www`)), false);
  await assertNoNetwork(tmp.root, { idle: true });
  assert.deepEqual(mountsUnder(tmp.root), []);
  assert.deepEqual(fs.readdirSync(path.join(tmp.root, 'containers')), [], 'no container directory left');
});

test('up attached (events and attach streams): --exit-code-from gives the service\'s exit code; logs; down', (t) => {
  if (!haveCompose) return t.skip('docker-compose is not installed');
  const d2 = fs.mkdtempSync(path.join(tmp.root, 'attached-'));
  fs.writeFileSync(path.join(d2, 'docker-compose.yml'), `version: "3.8"
services:
  first:
    image: busybox
    command: ["sh", "-c", "echo hello-first; exec sleep 300"]
    stop_grace_period: 1s
  second:
    image: busybox
    depends_on: [first]
    command: ["sh", "-c", "echo hello-second; exit 3"]
`);
  const run = (args: string[]) => spawnSync('docker-compose', ['--no-ansi', ...args], { cwd: d2, encoding: 'utf8', timeout: 120_000, env: { ...s.env, COMPOSE_PROJECT_NAME: 'hullattached' } });
  const up = run(['up', '--exit-code-from', 'second']);
  assert.equal(up.status, 3, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stdout, /hullattached_second_1 exited with code 3/);
  // what compose prints while it aborts depends on its own threads; the logs are whole
  const logs = run(['logs', '--no-color']);
  assert.match(logs.stdout, /first_1\s+\| hello-first/);
  assert.match(logs.stdout, /second_1\s+\| hello-second/);
  const down = run(['down']);
  assert.equal(down.status, 0, down.stderr);
  assert.equal(hull(tmp.root, ['ps', '-aq']).stdout, '');
});

test('a changed service is recreated by up -d, keeping its anonymous volume; down -v removes it', (t) => {
  if (!haveCompose) return t.skip('docker-compose is not installed');
  const d3 = fs.mkdtempSync(path.join(tmp.root, 'recreate-'));
  const file = (v: string) => `version: "3.8"
services:
  keeper:
    image: busybox
    environment: {V: "${v}"}
    volumes: ["/anon"]
    command: ["sh", "-c", "[ -f /anon/first ] || echo $$V > /anon/first; exec sleep 300"]
    stop_grace_period: 1s
`;
  const run = (args: string[]) => {
    const r = spawnSync('docker-compose', ['--no-ansi', ...args], { cwd: d3, encoding: 'utf8', timeout: 120_000, env: { ...s.env, COMPOSE_PROJECT_NAME: 'hullrecreate' } });
    assert.equal(r.status, 0, `docker-compose ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    return r;
  };
  fs.writeFileSync(path.join(d3, 'docker-compose.yml'), file('one'));
  run(['up', '-d']);
  const first = hull(tmp.root, ['inspect', '-f', '{{.Id}}', 'hullrecreate_keeper_1']).stdout.trim();
  assert.equal(run(['exec', '-T', 'keeper', 'cat', '/anon/first']).stdout, 'one\n');
  fs.writeFileSync(path.join(d3, 'docker-compose.yml'), file('two'));
  const up = run(['up', '-d']);
  assert.match(up.stderr, /Recreating hullrecreate_keeper_1/);
  assert.notEqual(hull(tmp.root, ['inspect', '-f', '{{.Id}}', 'hullrecreate_keeper_1']).stdout.trim(), first, 'a new container');
  assert.equal(run(['exec', '-T', 'keeper', 'sh', '-c', 'cat /anon/first; echo $V']).stdout, 'one\ntwo\n', 'the anonymous volume came along');
  const vols = hull(tmp.root, ['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean);
  assert.equal(vols.length, 1);
  run(['down', '-v', '-t', '1']);
  assert.equal(hull(tmp.root, ['volume', 'ls', '-q']).stdout, '');
});
