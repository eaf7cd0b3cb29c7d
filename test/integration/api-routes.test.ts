/**
 * The api suite: every Engine API route the docker 28 CLI and docker-compose 1.29 call in the
 * daily flows (run, ps, logs, exec, volumes, networks, labels, events, top, cp, df, stats,
 * pause, rename, compose up/ps/logs/exec/stop/start/down) is answered by a real handler. Part
 * one asks each route of a written list; part two records what the real clients actually called
 * (`hull serve --debug-requests`) and checks that none hit a missing route or a 501. A 501 is
 * only for the routes of the README's "Not built" list, and names its reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { buildRouter } from '../../src/api/server.js';
import { UNSUPPORTED } from '../../src/api/unsupported.js';
import { splitVersion } from '../../src/api/version.js';
import { endServe, docker, haveDocker, request, startServe, type Serve } from './api-harness.js';

const haveDockerCli = haveDocker();
const haveCompose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' }).status === 0;
let tmp: TempRoot;
let s: Serve;

before(async () => {
  tmp = makeTempRoot('hull-api-routes-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root, { serveArgs: ['--debug-requests'] });
});

after(async () => {
  await endServe(s, tmp, { removeVolumes: true });
});

/** Method, path (with a real or bogus id), body: the routes docker 28 and compose 1.29 use in these flows. */
const ROUTES: [string, string, string?][] = [
  ['GET', '/_ping'], ['HEAD', '/_ping'], ['GET', '/version'], ['GET', '/info'],
  ['GET', '/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D'], ['POST', '/containers/create', '{}'],
  ['GET', '/containers/nosuch/json'], ['POST', '/containers/nosuch/start'], ['POST', '/containers/nosuch/stop'],
  ['POST', '/containers/nosuch/kill'], ['POST', '/containers/nosuch/restart'], ['DELETE', '/containers/nosuch?v=1&force=1'],
  ['POST', '/containers/nosuch/wait'], ['POST', '/containers/nosuch/attach?stream=1&stdout=1'], ['GET', '/containers/nosuch/logs?stdout=1'],
  ['GET', '/containers/nosuch/stats?stream=0'], ['POST', '/containers/nosuch/resize?h=10&w=10'], ['POST', '/containers/prune'],
  ['GET', '/containers/nosuch/top'], ['POST', '/containers/nosuch/pause'], ['POST', '/containers/nosuch/unpause'],
  ['POST', '/containers/nosuch/rename?name=x2'], ['POST', '/containers/nosuch/update', '{"Memory":67108864}'], ['HEAD', '/containers/nosuch/archive?path=/'], ['GET', '/containers/nosuch/archive?path=/'],
  ['PUT', '/containers/nosuch/archive?path=/', ''], ['POST', '/containers/nosuch/exec', '{"Cmd":["true"]}'],
  ['POST', '/exec/nosuch/start', '{}'], ['GET', '/exec/nosuch/json'], ['POST', '/exec/nosuch/resize?h=1&w=1'],
  ['GET', '/images/json'], ['GET', '/images/busybox/json'], ['POST', '/images/nosuch/tag?repo=x&tag=y'], ['DELETE', '/images/nosuch'],
  ['GET', '/images/get?names=nosuch'], ['POST', '/images/prune'], ['POST', '/images/create?fromImage=127.0.0.1%3A1%2Fnosuch&tag=latest'],
  ['GET', '/networks'], ['GET', '/networks/nosuch'], ['POST', '/networks/create', '{"Name":""}'], ['POST', '/networks/nosuch/connect', '{"Container":"x"}'],
  ['POST', '/networks/nosuch/disconnect', '{"Container":"x"}'], ['DELETE', '/networks/nosuch'], ['POST', '/networks/prune'],
  ['GET', '/volumes'], ['POST', '/volumes/create', '{"Name":"bad/name"}'], ['GET', '/volumes/nosuch'], ['DELETE', '/volumes/nosuch'], ['POST', '/volumes/prune'],
  ['GET', `/events?since=0&until=1`], ['GET', '/system/df'],
];

test('every route the docker CLI and compose use here has a handler (no "page not found", no 405, no 501)', async () => {
  for (const [method, p, body] of ROUTES) {
    const r = await request(s.socket, method, `/v1.45${p}`, body);
    const msg = r.body ? ((): string => { try { return String((JSON.parse(r.body) as { message?: string }).message ?? ''); } catch { return ''; } })() : '';
    assert.ok(r.status !== 405 && r.status !== 501 && !(r.status === 404 && msg === 'page not found'), `${method} ${p}: ${r.status} ${msg}`);
  }
});

test("the routes hull does not build answer 501 with the README's reason", async () => {
  const readme = fs.readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'README.md'), 'utf8');
  for (const [method, pattern, why] of UNSUPPORTED) {
    const p = pattern.replace('{id}', 'x').replace('{name*}', 'busybox');
    const r = await request(s.socket, method, `/v1.45${p}`, method === 'POST' ? '{}' : undefined);
    assert.equal(r.status, 501, `${method} ${p}`);
    assert.match((JSON.parse(r.body) as { message: string }).message, new RegExp(why.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.ok(readme.includes(`\`${method} ${pattern.replace('{name*}', '{name}')}\``), `README lists ${method} ${pattern} as not built`);
  }
});

/** What the server logged: [method, path without version and query, status]. */
function logged(from: number): [string, string, number][] {
  return s
    .log()
    .slice(from)
    .split('\n')
    .map((l) => /^\S+Z (\S+) (\S+) (\d+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1]!, splitVersion(m[2]!.split('?')[0]!).path, Number(m[3])]);
}

test('the routes the real clients called in a day of work were all answered (none missing, none 501)', async (t) => {
  if (!haveDockerCli) return t.skip('the docker CLI is not installed');
  const from = s.log().length;
  const ok = (args: string[]) => {
    const r = docker(s, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const t0 = (Date.now() / 1000).toFixed(3);
  ok(['volume', 'create', 'rv']);
  ok(['network', 'create', 'rnet']);
  ok(['run', '-d', '--name', 'r1', '--label', 'app=x', '--network', 'rnet', '-v', 'rv:/data', 'busybox', 'sleep', '300']);
  ok(['ps', '--filter', 'label=app=x']);
  ok(['logs', 'r1']);
  ok(['exec', 'r1', 'true']);
  ok(['top', 'r1']);
  ok(['pause', 'r1']);
  ok(['unpause', 'r1']);
  ok(['rename', 'r1', 'r2']);
  ok(['stats', '--no-stream', 'r2']);
  ok(['system', 'df']);
  const f = path.join(tmp.root, 'f.txt');
  fs.writeFileSync(f, 'x');
  ok(['cp', f, 'r2:/tmp/']);
  ok(['cp', 'r2:/tmp/f.txt', path.join(tmp.root, 'g.txt')]);
  ok(['events', '--since', t0, '--until', (Date.now() / 1000).toFixed(3)]);
  ok(['volume', 'ls']);
  ok(['volume', 'inspect', 'rv']);
  ok(['network', 'ls']);
  ok(['rm', '-f', '-v', 'r2']);
  ok(['volume', 'rm', 'rv']);
  ok(['network', 'rm', 'rnet']);
  if (haveCompose) {
    const dir = fs.mkdtempSync(path.join(tmp.root, 'proj-'));
    fs.writeFileSync(path.join(dir, 'docker-compose.yml'), 'version: "3.8"\nservices:\n  app:\n    image: busybox\n    command: ["sleep", "300"]\n    volumes: [d:/d]\nvolumes:\n  d: {}\n');
    const c = (args: string[]) => {
      const r = spawnSync('docker-compose', ['--no-ansi', ...args], { cwd: dir, env: { ...s.env, COMPOSE_PROJECT_NAME: 'routes' }, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, `docker-compose ${args.join(' ')}: ${r.stderr}`);
    };
    for (const a of [['up', '-d'], ['ps'], ['logs'], ['exec', '-T', 'app', 'true'], ['stop', '-t', '1'], ['start'], ['down', '-v', '-t', '1']]) c(a);
  } else t.diagnostic('docker-compose is not installed: its routes were not recorded');
  const router = buildRouter();
  const unsupported = new Set(UNSUPPORTED.map(([m, p]) => `${m} ${p}`));
  const seen = new Set<string>();
  for (const [method, p, status] of logged(from)) {
    const m = router.match(method, p);
    assert.ok(m && !('allowed' in m), `${method} ${p} has no route (status ${status})`);
    assert.notEqual(status, 501, `${method} ${p} answered 501`);
    seen.add(`${method} ${p.replace(/[0-9a-f]{64}/g, '{id}')}`);
  }
  for (const u of unsupported) assert.ok(![...seen].includes(u), `${u} was called`);
  t.diagnostic(`${seen.size} distinct requests answered`);
});
