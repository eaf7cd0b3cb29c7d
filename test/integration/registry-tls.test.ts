/**
 * TLS to a registry is verified against the system CA store (SSL_CERT_FILE names it here):
 * a registry whose certificate the store does not hold is refused, one it holds is spoken to.
 * Runs in child processes because the CA store is read once per process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../helpers/hull.js';
import { haveRegistry, startRegistry } from '../helpers/registry.js';

/** GET https://HOST/v2/ through hull's transport in a fresh node process with `env`. */
function probe(host: string, env: NodeJS.ProcessEnv): { code: number | null; out: string } {
  const script = `
    const { send, readBody } = await import(${JSON.stringify(path.join(REPO, 'dist', 'src', 'registry', 'http.js'))});
    try {
      const res = await send({ method: 'GET', url: new URL('https://${host}/v2/'), idleTimeoutMs: 10000 });
      await readBody(res, 65536);
      console.log('status ' + res.status);
    } catch (e) {
      console.log('error ' + (e.code ?? '') + ' ' + e.message);
      process.exitCode = 3;
    }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('https to a registry: verified against the system CA store', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const o = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (o.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return t.skip(`openssl cannot make a test certificate: ${o.stderr}`);
  }
  const reg = await startRegistry({ tls: { cert, key } });
  try {
    const refused = probe(reg.host, { SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt' });
    assert.equal(refused.code, 3, refused.out);
    assert.match(refused.out, /self[- ]signed|unable to verify|DEPTH_ZERO_SELF_SIGNED_CERT/i);
    const ok = probe(reg.host, { SSL_CERT_FILE: cert });
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /status 200/);

    // NODE_EXTRA_CA_CERTS adds to the system store, as with node itself (bin/hull keeps node
    // from parsing it at start-up and hands it to hull's code; test/unit/cli-launcher.test.ts).
    const extra = probe(reg.host, { SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt', NODE_EXTRA_CA_CERTS: cert });
    assert.equal(extra.code, 0, extra.out);
    assert.match(extra.out, /status 200/);
  } finally {
    await reg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
