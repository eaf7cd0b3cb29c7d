/**
 * bin/hull (a shell launcher) and bin/hull-boot.cjs: the CLI runs from the one-file bundle with
 * a V8 code cache, falls back to the compiled modules when the bundle is missing or older than
 * them, and gives NODE_EXTRA_CA_CERTS back to hull's own code (node itself never parses it).
 * Runs against a copy of the installation in a temp dir, so the real dist/ is left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/hull.js';

/** A minimal installation: bin/, package.json, a dist/ with a bundle and dist/src/cli/main.js. */
function fakeInstall(bundle: string | undefined, esmMain: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-launcher-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  for (const f of ['hull', 'hull-boot.cjs']) fs.copyFileSync(path.join(REPO, 'bin', f), path.join(dir, 'bin', f));
  fs.chmodSync(path.join(dir, 'bin', 'hull'), 0o755);
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"hull-fake","type":"module"}');
  fs.mkdirSync(path.join(dir, 'dist', 'src', 'cli'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'dist', 'src', 'cli', 'main.js'), esmMain);
  if (bundle !== undefined) {
    fs.writeFileSync(path.join(dir, 'dist', 'cli.cjs'), bundle);
    // the bundle is built after tsc: make it the newer file
    const later = new Date(Date.now() + 2000);
    fs.utimesSync(path.join(dir, 'dist', 'cli.cjs'), later, later);
  }
  return dir;
}

const REPORT = (from: string) =>
  `async function main(argv) { console.log(JSON.stringify({ from: ${JSON.stringify(from)}, argv, extra: process.env.NODE_EXTRA_CA_CERTS ?? null, moved: process.env.HULL_NODE_EXTRA_CA_CERTS ?? null })); return argv.length; }`;

function run(dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(path.join(dir, 'bin', 'hull'), args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout.trim() ? JSON.parse(r.stdout.trim()) : undefined, stderr: r.stderr };
}

test('the launcher runs the bundle, caches its code per command, and hands NODE_EXTRA_CA_CERTS to hull', () => {
  const dir = fakeInstall(`${REPORT('bundle')}\nmodule.exports = { main };\n`, `export ${REPORT('esm')}`);
  try {
    const missing = path.join(dir, 'no-such-ca.pem');
    const a = run(dir, ['--root', '/x', 'run', 'a', 'b'], { NODE_EXTRA_CA_CERTS: missing });
    // node would warn "Ignoring extra certs from ..." at start-up had it seen the variable
    assert.doesNotMatch(a.stderr, /extra certs/i, a.stderr);
    assert.deepEqual(a.out, { from: 'bundle', argv: ['--root', '/x', 'run', 'a', 'b'], extra: missing, moved: null });
    assert.equal(a.code, 5, 'the exit code is what main returned');
    const caches = fs.readdirSync(path.join(dir, 'dist', 'v8-cache'));
    assert.equal(caches.length, 1);
    assert.match(caches[0]!, /^run-\d+-\d+-\d+\.bin$/);
    // a second call uses (and keeps) that cache; another command gets its own
    assert.equal(run(dir, ['run']).out.from, 'bundle');
    run(dir, ['ps']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'dist', 'v8-cache')).map((n) => n.split('-')[0]).sort(), ['ps', 'run']);
    // a rebuilt bundle gets a fresh cache, and the one of the old bundle goes
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(dir, 'dist', 'cli.cjs'), later, later);
    run(dir, ['run']);
    const runs = fs.readdirSync(path.join(dir, 'dist', 'v8-cache')).filter((n) => n.startsWith('run-'));
    assert.equal(runs.length, 1);
    assert.notEqual(runs[0], caches[0]);
    // without the variable nothing is set
    assert.equal(run(dir, ['x'], { NODE_EXTRA_CA_CERTS: undefined }).out.extra, null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the launcher falls back to the compiled modules when the bundle is missing or stale', () => {
  const none = fakeInstall(undefined, `export ${REPORT('esm')}`);
  const stale = fakeInstall(`${REPORT('bundle')}\nmodule.exports = { main };\n`, `export ${REPORT('esm')}`);
  try {
    assert.equal(run(none, ['ps']).out.from, 'esm');
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(stale, 'dist', 'cli.cjs'), past, past);
    assert.equal(run(stale, ['ps']).out.from, 'esm');
  } finally {
    fs.rmSync(none, { recursive: true, force: true });
    fs.rmSync(stale, { recursive: true, force: true });
  }
});

test('the launcher reports a broken bundle and exits 125', () => {
  const dir = fakeInstall('throw new Error("bundle is broken");\n', `export ${REPORT('esm')}`);
  try {
    const r = run(dir, ['ps']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /bundle is broken/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the real installation has bundles newer than the compiled modules they come from', () => {
  for (const [bundle, compiled] of [['cli.cjs', ['cli', 'main.js']], ['exit-hook.cjs', ['engine', 'exit-hook.js']]] as const) {
    const b = fs.statSync(path.join(REPO, 'dist', bundle));
    const m = fs.statSync(path.join(REPO, 'dist', 'src', ...compiled));
    assert.ok(b.mtimeMs >= m.mtimeMs, `dist/${bundle} is older than dist/src/${compiled.join('/')}: run npm run build`);
  }
});

test('hull-boot.cjs --exit-hook runs the hook bundle with the hook\'s own arguments, or its compiled module', () => {
  const dir = fakeInstall(`${REPORT('bundle')}\nmodule.exports = { main };\n`, `export ${REPORT('esm')}`);
  try {
    const hookSrc = (from: string) => `console.log(JSON.stringify({ from: ${JSON.stringify(from)}, argv: process.argv.slice(2) })); process.exitCode = 3;\n`;
    fs.mkdirSync(path.join(dir, 'dist', 'src', 'engine'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dist', 'src', 'engine', 'exit-hook.js'), hookSrc('hook-esm'));
    const hook = () => {
      const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'hull-boot.cjs'), '--exit-hook', '/root', 'abc'], { encoding: 'utf8' });
      return { code: r.status, out: JSON.parse(r.stdout.trim()) };
    };
    assert.deepEqual(hook(), { code: 3, out: { from: 'hook-esm', argv: ['/root', 'abc'] } });
    fs.writeFileSync(path.join(dir, 'dist', 'exit-hook.cjs'), hookSrc('hook-bundle'));
    const later = new Date(Date.now() + 2000);
    fs.utimesSync(path.join(dir, 'dist', 'exit-hook.cjs'), later, later);
    assert.deepEqual(hook(), { code: 3, out: { from: 'hook-bundle', argv: ['/root', 'abc'] } });
    assert.ok(fs.readdirSync(path.join(dir, 'dist', 'v8-cache')).some((n) => n.startsWith('exit-hook-')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
