/**
 * hull build with real Dockerfiles: RUN steps in real crun containers, images in a temporary
 * root, each instruction group checked in the image it makes and in a container run from it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hull, importBusybox, makeTempRoot, mountsUnder, processesMentioning, type TempRoot } from '../helpers/hull.js';

let t: TempRoot;
let work: string;

before(() => {
  t = makeTempRoot('hull-build-');
  importBusybox(t.root);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-build-ctx-'));
});

after(() => {
  const left = hull(t.root, ['ps', '-aq']).stdout.trim();
  assert.equal(left, '', 'no container is left behind');
  assert.deepEqual(mountsUnder(t.root), []);
  assert.deepEqual(processesMentioning(t.root), []);
  t.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

/** A context directory with these files (a string is a file's text). */
function context(name: string, files: Record<string, string>): string {
  const dir = path.join(work, name);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  return dir;
}

function build(args: string[], opts: { input?: string | Buffer } = {}) {
  return hull(t.root, ['build', ...args], { ...opts, timeoutMs: 300_000 });
}

function ok(args: string[], opts: { input?: string | Buffer } = {}): string {
  const r = build(args, opts);
  assert.equal(r.code, 0, `build failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function inspect(ref: string): Record<string, any> {
  const r = hull(t.root, ['image', 'inspect', ref]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

function run(ref: string, ...cmd: string[]): string {
  const r = hull(t.root, ['run', '--rm', ref, ...cmd]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

test('config instructions: ENV, ARG (before and after FROM), LABEL, EXPOSE, WORKDIR, USER, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, CMD, ENTRYPOINT, ONBUILD', () => {
  const dir = context('config', {
    Dockerfile: [
      'ARG BASE=busybox',
      'ARG TAG=latest',
      'FROM ${BASE}:${TAG}',
      'ARG TAG',
      'ARG WHO=world',
      'ENV GREETING="hello ${WHO}" TAGGED=${TAG:+yes} UNSET=${NOPE:-dflt}',
      'LABEL org.example.who=$WHO "spaced key"="a b"',
      'EXPOSE 80 53/udp',
      'WORKDIR /srv',
      'WORKDIR app',
      'USER nobody',
      'VOLUME ["/data"]',
      'STOPSIGNAL SIGQUIT',
      'HEALTHCHECK --interval=5s --retries=2 CMD true',
      'SHELL ["/bin/sh", "-ec"]',
      'ENTRYPOINT ["/bin/echo"]',
      'CMD ["from", "cmd"]',
      'ONBUILD RUN echo triggered > /tmp/onbuild',
      '',
    ].join('\n'),
  });
  ok(['-t', 'cfg', '--build-arg', 'WHO=hull', dir]);
  const c = inspect('cfg').Config;
  assert.ok(c.Env.includes('GREETING=hello hull'), c.Env);
  assert.ok(c.Env.includes('TAGGED=yes'), 'an ARG redeclared after FROM takes the global value');
  assert.ok(c.Env.includes('UNSET=dflt'));
  assert.ok(!c.Env.some((e: string) => e.startsWith('WHO=')), 'ARGs are not persisted');
  assert.equal(c.Labels['org.example.who'], 'hull');
  assert.equal(c.Labels['spaced key'], 'a b');
  assert.deepEqual(Object.keys(c.ExposedPorts).sort(), ['53/udp', '80/tcp']);
  assert.equal(c.WorkingDir, '/srv/app');
  assert.equal(c.User, 'nobody');
  assert.deepEqual(Object.keys(c.Volumes), ['/data']);
  assert.equal(c.StopSignal, 'SIGQUIT');
  assert.deepEqual(c.Entrypoint, ['/bin/echo']);
  assert.deepEqual(c.Cmd, ['from', 'cmd']);
  assert.deepEqual(c.OnBuild, ['RUN echo triggered > /tmp/onbuild']);
  assert.deepEqual(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
  assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
  const raw = JSON.parse(fs.readFileSync(path.join(t.root, 'blobs', 'sha256', inspect('cfg').Id.slice(7)), 'utf8'));
  assert.match(raw.history.at(-1).created_by, /#\(nop\) {2}ONBUILD RUN echo triggered/);
  // WORKDIR made the directory; the image runs with all of it
  assert.equal(run('cfg'), 'from cmd\n');
  assert.equal(run('--entrypoint', 'pwd', 'cfg').trim(), '/srv/app');
  // ONBUILD is triggered in a build FROM it, and not inherited further
  const child = context('child', { Dockerfile: 'FROM cfg\nUSER root\nRUN cat /tmp/onbuild\n' });
  const out = ok(['-t', 'cfg-child', child]);
  assert.match(out, /# Executing 1 build trigger/);
  assert.equal(run('--entrypoint', 'cat', 'cfg-child', '/tmp/onbuild'), 'triggered\n');
  assert.equal(inspect('cfg-child').Config.OnBuild, null);
});

test('RUN: shell and exec form, build args in the environment, USER, SHELL, heredoc, escape directive and continuations', () => {
  const dir = context('run', {
    Dockerfile: [
      '# escape=`',
      'FROM busybox',
      'ARG FLAVOUR=plain',
      'RUN echo "shell $FLAVOUR" > /shell.txt && `',
      '    # a comment inside a continuation',
      '    echo joined >> /shell.txt',
      'RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]',
      'RUN <<EOF',
      'echo heredoc-one > /heredoc.txt',
      'echo heredoc-two >> /heredoc.txt',
      'EOF',
      'USER nobody',
      'RUN id -u > /tmp/uid',
      'USER root',
      'SHELL ["/bin/ash", "-c"]',
      'RUN echo "$0" > /shellname',
      '',
    ].join('\n'),
  });
  ok(['-t', 'runs', '--build-arg', 'FLAVOUR=spicy', dir]);
  assert.equal(run('runs', 'cat', '/shell.txt'), 'shell spicy\njoined\n');
  assert.equal(run('runs', 'cat', '/exec.txt'), 'exec\n');
  assert.equal(run('runs', 'cat', '/heredoc.txt'), 'heredoc-one\nheredoc-two\n');
  assert.equal(run('runs', 'cat', '/tmp/uid'), '65534\n');
  assert.equal(run('runs', 'cat', '/shellname'), '/bin/ash\n');
  const hist = JSON.parse(fs.readFileSync(path.join(t.root, 'blobs', 'sha256', inspect('runs').Id.slice(7)), 'utf8')).history;
  assert.ok(hist.some((h: { created_by?: string }) => h.created_by?.startsWith('|1 FLAVOUR=spicy /bin/sh -c echo "shell $FLAVOUR"')), 'docker records the build args a RUN saw');
  // what the runtime mounts into every container is not part of a RUN's layer
  const layers = inspect('runs').RootFS.Layers as string[];
  for (const l of layers.slice(1)) {
    const names = spawnSync('tar', ['tf', path.join(t.root, 'blobs', 'sha256', l.slice(7))], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(names, /etc\/(hosts|hostname|resolv\.conf)|^proc\/|^dev\/|^sys\//m);
  }
});

test('COPY and ADD: files, directories, wildcards, --chown, --chmod, an archive unpacked by ADD, symlinks copied as symlinks, a URL refused', () => {
  const dir = context('copy', {
    'one.txt': 'one\n',
    'two.txt': 'two\n',
    'notes.md': 'md\n',
    'tree/a/deep.txt': 'deep\n',
    'tree/top.txt': 'top\n',
    Dockerfile: [
      'FROM busybox',
      'COPY one.txt /single',
      'COPY *.txt /many/',
      'COPY tree /tree/',
      'COPY --chown=nobody:nogroup --chmod=600 one.txt /owned/',
      'COPY --chown=33 two.txt /num/',
      'ADD bundle.tar.gz /unpacked/',
      'COPY link /copied-link',
      'WORKDIR /rel',
      'COPY one.txt .',
      '',
    ].join('\n'),
  });
  fs.symlinkSync('/etc/shadow-of-the-host', path.join(dir, 'link'));
  fs.mkdirSync(path.join(work, 'bundle', 'inner'), { recursive: true });
  fs.writeFileSync(path.join(work, 'bundle', 'inner', 'in-archive.txt'), 'from the archive\n');
  assert.equal(spawnSync('tar', ['czf', path.join(dir, 'bundle.tar.gz'), '--owner=7', '--group=8', '-C', path.join(work, 'bundle'), '.']).status, 0);
  ok(['-t', 'copies', dir]);
  const script = [
    'cat /single',
    'ls /many',
    'cat /tree/a/deep.txt /tree/top.txt',
    'stat -c "%U:%G %a" /owned/one.txt',
    'stat -c "%u:%g" /num/two.txt',
    'cat /unpacked/inner/in-archive.txt',
    'stat -c "%u:%g" /unpacked/inner/in-archive.txt',
    'readlink /copied-link',
    'cat /rel/one.txt',
  ].join('; ');
  assert.equal(run('copies', 'sh', '-c', script), ['one', 'one.txt', 'two.txt', 'deep', 'top', 'nobody:nogroup 600', '33:33', 'from the archive', '7:8', '/etc/shadow-of-the-host', 'one', ''].join('\n'));
  const url = context('url', { Dockerfile: 'FROM busybox\nADD https://example.com/file /f\n' });
  const r = build([url]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /ADD at Dockerfile line 2: ADD from a URL \(https:\/\/example.com\/file\) needs the network/);
});

test('multi-stage: COPY --from a named stage and by index, --target stops early, unused stages are skipped', () => {
  const dir = context('multi', {
    Dockerfile: [
      'FROM busybox AS builder',
      'RUN mkdir /out && echo built > /out/artifact && ln -s artifact /out/alias',
      'FROM busybox AS unused',
      'RUN echo this stage must not run && exit 1',
      'FROM scratch AS final',
      'COPY --from=builder /out/ /app/',
      'COPY --from=0 /bin/busybox /bin/busybox',
      'COPY --from=builder /bin/sh /bin/sh',
      'CMD ["/bin/busybox", "cat", "/app/artifact"]',
      '',
    ].join('\n'),
  });
  const out = ok(['-t', 'multi', dir]);
  assert.doesNotMatch(out, /this stage must not run/);
  assert.equal(run('multi'), 'built\n');
  assert.equal(run('multi', '/bin/busybox', 'readlink', '/app/alias'), 'artifact\n');
  assert.equal(run('multi', '/bin/busybox', 'readlink', '/bin/sh'), '/bin/busybox\n', 'a symlink from a stage stays a symlink');
  ok(['-t', 'multi-builder', '--target', 'builder', dir]);
  assert.equal(run('multi-builder', 'cat', '/out/artifact'), 'built\n');
  const bad = build(['--target', 'nope', dir]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /failed to reach build target nope/);
});

test('the layer cache: a second build is all cache hits, a changed COPYed file rebuilds from its step, --no-cache runs everything, builder prune clears it', () => {
  const dir = context('cache', {
    'a.txt': 'a\n',
    'b.txt': 'b\n',
    Dockerfile: ['FROM busybox', 'COPY a.txt /a.txt', 'RUN cat /a.txt > /from-a', 'COPY b.txt /b.txt', 'RUN cat /b.txt > /from-b', ''].join('\n'),
  });
  const first = ok(['-t', 'cached', dir]);
  assert.equal((first.match(/Using cache/g) ?? []).length, 0);
  const id1 = inspect('cached').Id;
  const second = ok(['-t', 'cached', dir]);
  assert.equal((second.match(/Using cache/g) ?? []).length, 4, second);
  assert.equal(inspect('cached').Id, id1, 'an all-cached build gives the same image');
  // an mtime change alone is not a change (docker keys COPY on content and mode)
  fs.utimesSync(path.join(dir, 'b.txt'), new Date(1e12), new Date(1e12));
  assert.equal((ok(['-t', 'cached', dir]).match(/Using cache/g) ?? []).length, 4);
  fs.writeFileSync(path.join(dir, 'b.txt'), 'b changed\n');
  const third = ok(['-t', 'cached', dir]);
  const steps = third.split(/^Step /m).slice(1);
  assert.deepEqual(steps.map((s) => /Using cache/.test(s)), [false, true, true, false, false], third);
  assert.equal(run('cached', 'cat', '/from-b'), 'b changed\n');
  const nocache = ok(['--no-cache', '-t', 'cached', dir]);
  assert.equal((nocache.match(/Using cache/g) ?? []).length, 0);
  assert.equal((nocache.match(/Running in/g) ?? []).length, 2);
  // intermediate images are hidden from `images`, shown with -a
  const listed = hull(t.root, ['images', '-q']).stdout.trim().split('\n').length;
  const all = hull(t.root, ['images', '-a', '-q']).stdout.trim().split('\n').length;
  assert.ok(all > listed, `images -a lists intermediate images (${all} > ${listed})`);
  const pr = hull(t.root, ['builder', 'prune', '-f']);
  assert.equal(pr.code, 0, pr.stderr);
  assert.match(pr.stdout, /Total reclaimed space/);
  assert.equal((ok(['-t', 'cached', dir]).match(/Using cache/g) ?? []).length, 0, 'nothing is cached after builder prune');
  assert.equal(run('cached', 'cat', '/from-a'), 'a\n');
});

test('.dockerignore: excluded paths are not in the context, ! re-includes, ** spans directories', () => {
  const dir = context('ignore', {
    '.dockerignore': ['# comment', '*.log', '!keep.log', '**/secret*', 'build', ''].join('\n'),
    'app.txt': 'app\n',
    'debug.log': 'noise\n',
    'keep.log': 'kept\n',
    'deep/er/secret.key': 'hidden\n',
    'deep/er/visible.txt': 'visible\n',
    'build/out.bin': 'artifact\n',
    Dockerfile: 'FROM busybox\nCOPY . /ctx/\n',
  });
  ok(['-t', 'ignored', dir]);
  const listing = run('ignored', 'find', '/ctx', '-type', 'f').trim().split('\n').sort();
  assert.deepEqual(listing, ['/ctx/.dockerignore', '/ctx/Dockerfile', '/ctx/app.txt', '/ctx/deep/er/visible.txt', '/ctx/keep.log']);
  const missing = context('ignore2', { '.dockerignore': 'secret.txt\n', 'secret.txt': 's', Dockerfile: 'FROM busybox\nCOPY secret.txt /s\n' });
  const r = build([missing]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /COPY at Dockerfile line 2: secret.txt: not found in the build context \(or excluded by \.dockerignore\)/);
});

test('a failed RUN names its line, exit code and last output; it leaves no container, mount or image, and earlier steps stay cached', () => {
  const dir = context('fail', { Dockerfile: 'FROM busybox\nRUN echo step-two > /two\nRUN echo first-line; echo last-line >&2; exit 3\nRUN echo never\n' });
  const before = hull(t.root, ['images', '-a', '-q']).stdout;
  const r = build(['-t', 'failed', dir]);
  assert.equal(r.code, 3, "the RUN's exit code, as docker's classic builder exits");
  assert.match(r.stderr, /Dockerfile line 3: The command '\/bin\/sh -c echo first-line; echo last-line >&2; exit 3' returned a non-zero code: 3/);
  assert.match(r.stderr, /last-line/);
  assert.doesNotMatch(r.stdout, /never/);
  assert.equal(hull(t.root, ['ps', '-aq']).stdout.trim(), '');
  assert.deepEqual(fs.readdirSync(path.join(t.root, 'containers')), []);
  assert.deepEqual(mountsUnder(t.root), []);
  assert.equal(hull(t.root, ['image', 'inspect', 'failed']).code, 1, 'no image is tagged');
  const after = hull(t.root, ['images', '-a', '-q']).stdout.trim().split('\n');
  assert.equal(after.length, before.trim().split('\n').length + 1, 'only the step that succeeded became an image');
  assert.deepEqual(fs.readdirSync(path.join(t.root, 'tmp')).filter((f) => f.startsWith('build-') || f.startsWith('context-')), []);
  const again = build([dir]);
  assert.match(again.stdout, /Step 2\/4 : RUN echo step-two > \/two\n ---> Using cache/);
  // the other errors that name the line
  const unknown = build([context('unknown', { Dockerfile: 'FROM busybox\nRUN true\nFROOM x\n' })]);
  assert.match(unknown.stderr, /Dockerfile line 3: unknown instruction: FROOM/);
  const outside = build([context('outside', { Dockerfile: 'FROM busybox\nCOPY ../../etc/passwd /x\n' })]);
  assert.match(outside.stderr, /COPY at Dockerfile line 2: forbidden path outside the build context: \.\.\/\.\.\/etc\/passwd/);
  const notFound = build([context('nf', { Dockerfile: 'FROM busybox\nCOPY missing.txt /x\n' })]);
  assert.match(notFound.stderr, /COPY at Dockerfile line 2: missing.txt: not found in the build context/);
});

test('contexts: a tar on stdin, a tar file, a Dockerfile from stdin with no context, -f elsewhere, -q and --iidfile', () => {
  const dir = context('tarctx', { 'f.txt': 'from tar\n', 'sub/Dockerfile.alt': 'FROM busybox\nCOPY f.txt /f.txt\n' });
  const tarFile = path.join(work, 'ctx.tar');
  assert.equal(spawnSync('tar', ['cf', tarFile, '-C', dir, '.']).status, 0);
  ok(['-t', 'fromtar', '-f', 'sub/Dockerfile.alt', '-'], { input: fs.readFileSync(tarFile) });
  assert.equal(run('fromtar', 'cat', '/f.txt'), 'from tar\n');
  ok(['-t', 'fromtarfile', '-f', 'sub/Dockerfile.alt', tarFile]);
  assert.equal(run('fromtarfile', 'cat', '/f.txt'), 'from tar\n');
  const q = ok(['-q', '-t', 'stdin-df', '-'], { input: 'FROM busybox\nENV FROM_STDIN=1\n' });
  assert.match(q, /^sha256:[0-9a-f]{64}\n$/);
  const iid = path.join(work, 'iid');
  ok(['--iidfile', iid, '-f', path.join(dir, 'sub', 'Dockerfile.alt'), dir]);
  assert.match(fs.readFileSync(iid, 'utf8'), /^sha256:[0-9a-f]{64}$/);
  const plain = ok(['--progress', 'plain', '--label', 'built.by=hull', '-t', 'labelled', dir, '-f', path.join(dir, 'sub', 'Dockerfile.alt')]);
  void plain;
  assert.equal(inspect('labelled').Config.Labels['built.by'], 'hull');
});

test('an interrupted build (SIGTERM during a RUN) kills and removes the step\'s container and stops', async () => {
  const dir = context('interrupt', { Dockerfile: 'FROM busybox\nRUN echo started; sleep 60; echo finished-sleeping\nRUN echo never\n' });
  const { spawn } = await import('node:child_process');
  const { HULL_BIN } = await import('../helpers/hull.js');
  const c = spawn(HULL_BIN, ['--root', t.root, 'build', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<number | null>((resolve) => c.on('close', (code) => resolve(code)));
  // the RUN's own output line (the step line above it names the command too)
  for (let i = 0; i < 600 && !/^started$/m.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /^started$/m);
  c.kill('SIGTERM');
  const code = await closed;
  assert.notEqual(code, 0);
  assert.match(err, /RUN at Dockerfile line 2: build interrupted/);
  assert.doesNotMatch(out, /^finished-sleeping$/m, 'the RUN was killed, not waited for');
  assert.doesNotMatch(out, /Step 3\/3/);
  assert.equal(hull(t.root, ['ps', '-aq']).stdout.trim(), '');
  assert.deepEqual(fs.readdirSync(path.join(t.root, 'containers')), []);
  assert.deepEqual(processesMentioning(t.root), []);
});

test('RUN steps are on the default bridge network (docker\'s default), --network none leaves them without one', () => {
  const dir = context('net', { Dockerfile: 'FROM busybox\nRUN (ip -4 -o addr show eth0 2>/dev/null || echo no-eth0) > /net.txt\n' });
  ok(['-t', 'net:bridge', dir]);
  assert.match(run('net:bridge', 'cat', '/net.txt'), /eth0\s+inet \d+\.\d+\.\d+\.\d+\/\d+/, 'an address on the bridge');
  ok(['--no-cache', '--network', 'none', '-t', 'net:none', dir]);
  assert.equal(run('net:none', 'cat', '/net.txt'), 'no-eth0\n');
  assert.equal(hull(t.root, ['ps', '-aq']).stdout.trim(), '', 'no step container left');
});
