/**
 * Faults between hull and a real docker-registry, injected by a small HTTP front written for
 * this test: 5xx answers (retried with backoff), 4xx answers (never retried), and blob
 * downloads redirected to another origin ("blob storage"), which must not receive the
 * registry's Authorization header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ContentStore } from '../../src/content/store.js';
import { RegistryClient } from '../../src/registry/client.js';
import { fetchImage } from '../../src/registry/fetch-image.js';
import { pushImage } from '../../src/registry/push-image.js';
import { parseReference } from '../../src/images/reference.js';
import type { Digest } from '../../src/oci/digest.js';
import { buildTestImage, haveRegistry, startRegistry } from '../helpers/registry.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const USER = { user: 'dave', password: 'pw' };
const basic = `Basic ${Buffer.from(`${USER.user}:${USER.password}`).toString('base64')}`;

interface Seen {
  method: string;
  url: string;
  auth: boolean;
  status: number;
}

/** Forward a request to the registry (adding `auth` when given) and copy the answer back. */
function forward(regPort: number, req: http.IncomingMessage, res: http.ServerResponse, pathname: string, auth?: string): Promise<number> {
  return new Promise((resolve) => {
    // The Host header is kept: the registry builds upload Locations from it, pointing at the front.
    const headers = { ...req.headers };
    if (auth) headers.authorization = auth;
    const up = http.request({ host: '127.0.0.1', port: regPort, method: req.method, path: pathname, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
      resolve(ur.statusCode ?? 502);
    });
    up.on('error', () => {
      res.destroy();
      resolve(0);
    });
    req.pipe(up);
  });
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

test('5xx answers are retried, 4xx are not, blob redirects to another origin carry no Authorization', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry({ basic: USER });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-faults-'));
  const seenFront: Seen[] = [];
  const seenStorage: Seen[] = [];
  let fail503 = 0;
  // "Blob storage": another origin (localhost instead of 127.0.0.1) that serves blobs by itself.
  const storage = http.createServer(async (req, res) => {
    const status = await forward(reg.port, req, res, req.url!.replace(/^\/storage/, ''), basic);
    seenStorage.push({ method: req.method!, url: req.url!, auth: req.headers.authorization !== undefined, status });
  });
  const storagePort = await listen(storage);
  const front = http.createServer(async (req, res) => {
    const url = req.url!;
    const rec: Seen = { method: req.method!, url, auth: req.headers.authorization !== undefined, status: 0 };
    seenFront.push(rec);
    if (url.includes('/manifests/') && fail503 > 0) {
      fail503--;
      rec.status = 503;
      res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}');
      return;
    }
    if (req.method === 'GET' && /\/blobs\/sha256:/.test(url) && req.headers.authorization) {
      rec.status = 307;
      res.writeHead(307, { Location: `http://localhost:${storagePort}/storage${url}` }).end();
      return;
    }
    rec.status = await forward(reg.port, req, res, url);
  });
  const frontPort = await listen(front);
  const host = `127.0.0.1:${frontPort}`;
  const creds = { username: USER.user, password: USER.password, source: 'test' };
  try {
    const src = new ContentStore(path.join(dir, 'src', 'blobs'), path.join(dir, 'src', 'tmp'));
    const img = await buildTestImage(src, { layers: [{ files: { a: 'a' } }, { randomBytes: 300_000 }] });
    await pushImage(new RegistryClient({ domain: host, credentials: creds }), 'f/img', 'latest', src, img.manifestDigest as Digest);

    // Two 503s on the manifest, then success: retried with backoff.
    fail503 = 2;
    const retries: number[] = [];
    const dst = new ContentStore(path.join(dir, 'dst', 'blobs'), path.join(dir, 'dst', 'tmp'));
    const client = new RegistryClient({ domain: host, credentials: creds, backoffMs: 20, onRetry: (i) => retries.push(i.delayMs) });
    const got = await fetchImage(client, parseReference(`${host}/f/img`), dst, { platform: amd64 });
    assert.equal(got.manifestDigest, img.manifestDigest);
    assert.equal(retries.length, 2, 'two retries');
    assert.ok(retries[1]! > retries[0]!, `backoff grows (${retries.join(', ')} ms)`);
    assert.equal(seenFront.filter((s) => s.url.includes('/manifests/latest') && s.method === 'GET').length, 3);

    // Blobs went through the redirect; storage never saw the registry's credentials.
    const blobGets = seenStorage.filter((s) => s.method === 'GET' && s.url.includes('/blobs/'));
    assert.equal(blobGets.length, 3, 'config and two layers fetched from "storage"');
    assert.ok(blobGets.every((s) => !s.auth && s.status === 200), JSON.stringify(blobGets));
    assert.ok(seenFront.filter((s) => s.status === 307).every((s) => s.auth), 'the registry itself got the credentials');

    // Too many 5xx: gives up with UNAVAILABLE after the configured retries.
    fail503 = 100;
    const few = new RegistryClient({ domain: host, credentials: creds, backoffMs: 5, retries: 2 });
    const n0 = seenFront.length;
    await assert.rejects(fetchImage(few, parseReference(`${host}/f/img`), new ContentStore(path.join(dir, 'x', 'blobs'), path.join(dir, 'x', 'tmp')), { platform: amd64 }), (e: Error & { code?: string }) => e.code === 'UNAVAILABLE' && /503/.test(e.message));
    assert.equal(seenFront.slice(n0).filter((s) => s.url.includes('/manifests/')).length, 3, 'one try and two retries');
    fail503 = 0;

    // A 404 is final: one request, no retry.
    const r404: number[] = [];
    const n1 = seenFront.length;
    await assert.rejects(
      fetchImage(new RegistryClient({ domain: host, credentials: creds, backoffMs: 5, onRetry: (i) => r404.push(i.attempt) }), parseReference(`${host}/f/missing:tag`), dst, { platform: amd64 }),
      (e: Error & { code?: string }) => e.code === 'NOT_FOUND',
    );
    assert.equal(r404.length, 0);
    assert.equal(seenFront.slice(n1).filter((s) => s.url.includes('/manifests/')).length, 1);
  } finally {
    front.closeAllConnections();
    storage.closeAllConnections();
    await new Promise((r) => front.close(r));
    await new Promise((r) => storage.close(r));
    await reg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
