import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hullAuthFile, lookupCredentials, removeCredentials, saveCredentials } from '../../src/registry/credentials.js';

function home() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-cred-'));
  const env = { HOME: dir } as NodeJS.ProcessEnv;
  return { dir, env, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('login stores credentials in hull\'s own file with mode 0600, logout removes them', () => {
  const h = home();
  try {
    const file = saveCredentials('localhost:5000', 'alice', 'p:ss', h.env);
    assert.equal(file, path.join(h.dir, '.config', 'hull', 'auth.json'));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(Buffer.from(doc.auths['localhost:5000'].auth, 'base64').toString(), 'alice:p:ss');
    const c = lookupCredentials('localhost:5000', h.env)!;
    assert.equal(c.username, 'alice');
    assert.equal(c.password, 'p:ss');
    saveCredentials('docker.io', 'bob', 'x', h.env);
    assert.ok(JSON.parse(fs.readFileSync(file, 'utf8')).auths['https://index.docker.io/v1/']);
    assert.equal(removeCredentials('localhost:5000', h.env), true);
    assert.equal(removeCredentials('localhost:5000', h.env), false);
    assert.equal(lookupCredentials('localhost:5000', h.env), undefined);
    assert.equal(lookupCredentials('docker.io', h.env)!.username, 'bob', 'other entries kept');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.throws(() => saveCredentials('r', '', 'x', h.env), /username is empty/);
    assert.throws(() => saveCredentials('r', 'a:b', 'x', h.env), /must not contain/);
  } finally {
    h.cleanup();
  }
});

test('docker\'s ~/.docker/config.json auths are read (after hull\'s own); a broken file is named', () => {
  const h = home();
  try {
    fs.mkdirSync(path.join(h.dir, '.docker'));
    const dockerFile = path.join(h.dir, '.docker', 'config.json');
    fs.writeFileSync(dockerFile, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('dock:er').toString('base64') }, 'reg.example.com': { identitytoken: 'tok' } } }), { mode: 0o600 });
    const hub = lookupCredentials('docker.io', h.env)!;
    assert.deepEqual([hub.username, hub.password, hub.source], ['dock', 'er', dockerFile]);
    assert.equal(lookupCredentials('reg.example.com', h.env)!.identityToken, 'tok');
    saveCredentials('docker.io', 'mine', 'pw', h.env);
    assert.equal(lookupCredentials('docker.io', h.env)!.username, 'mine', 'hull\'s file first');
    assert.equal(fs.statSync(dockerFile).mode & 0o777, 0o600, 'docker\'s file untouched');
    assert.equal(JSON.parse(fs.readFileSync(dockerFile, 'utf8')).auths['https://index.docker.io/v1/'].auth, Buffer.from('dock:er').toString('base64'));
    fs.writeFileSync(hullAuthFile(h.env), '{not json');
    assert.throws(() => lookupCredentials('docker.io', h.env), (e: Error) => e.message.includes(hullAuthFile(h.env)) && /not valid/.test(e.message));
    const viaEnv = { ...h.env, DOCKER_CONFIG: path.join(h.dir, '.docker'), HULL_AUTH_FILE: path.join(h.dir, 'other.json') };
    assert.equal(lookupCredentials('docker.io', viaEnv)!.username, 'dock');
  } finally {
    h.cleanup();
  }
});
