/**
 * Benchmark fixture for bench/pull.sh: builds a multi-layer image of realistic content (gzip'd
 * tars mixing incompressible and compressible files) and pushes it to a registry with hull's
 * push code. Usage: node dist/bench/pull-image.js HOST:PORT REPO:TAG LAYER_MIB...
 * The bottom layer is the host's static busybox (/bin/busybox, with sh and true linked to it)
 * so that the image runs (`hull run --rm IMAGE true`); the others are LAYER_MIB each.
 * Prints the manifest digest, the total compressed size and the number of layers.
 *
 * With `fetch` first (node dist/bench/pull-image.js fetch HOST:PORT REPO:TAG DIR) it instead
 * runs only the download phase of a pull (fetchImage: every blob verified into a content store
 * under DIR, no unpacking, no image record): the part of `hull pull` comparable to skopeo copy.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import tarStream from 'tar-stream';
import { ContentStore } from '../src/content/store.js';
import { RegistryClient } from '../src/registry/client.js';
import { pushImage } from '../src/registry/push-image.js';
import { fetchImage } from '../src/registry/fetch-image.js';
import { parseReference } from '../src/images/reference.js';
import type { Digest } from '../src/oci/digest.js';

async function layerTar(mib: number, seed: number): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  const total = mib * 1024 * 1024;
  let made = 0;
  let i = 0;
  while (made < total) {
    // Files of 64 KiB .. 4 MiB; two in three incompressible (like binaries and archives), one in three text.
    const size = Math.min(total - made, 64 * 1024 * 2 ** (i % 7));
    const body = i % 3 === 2 ? Buffer.from(crypto.randomBytes(Math.ceil(size / 2)).toString('hex').slice(0, size)) : crypto.randomBytes(size);
    pack.entry({ name: `layer${seed}/dir${i % 10}/file${i}`, size: body.length, mode: 0o644, mtime: new Date(0) }, body);
    made += size;
    i++;
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** A layer with the static busybox as /bin/busybox and /bin/sh, /bin/true linking to it. */
async function busyboxTar(): Promise<Buffer> {
  const bin = fs.readFileSync('/bin/busybox');
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  pack.entry({ name: 'bin/', type: 'directory', mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: 'bin/busybox', size: bin.length, mode: 0o755, mtime: new Date(0) }, bin);
  for (const n of ['sh', 'true']) pack.entry({ name: `bin/${n}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime: new Date(0) });
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

async function fetchOnly(host: string, repoTag: string, dir: string): Promise<void> {
  const cs = new ContentStore(path.join(dir, 'blobs'), path.join(dir, 'tmp'));
  await fetchImage(new RegistryClient({ domain: host, credentials: null }), parseReference(`${host}/${repoTag}`), cs, { platform: { os: 'linux', architecture: 'amd64' } });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'fetch') {
    const [host, repoTag, dir] = process.argv.slice(3);
    if (!host || !repoTag || !dir) throw new Error('usage: pull-image.js fetch HOST:PORT REPO:TAG DIR');
    return fetchOnly(host, repoTag, dir);
  }
  const [host, repoTag, ...sizes] = process.argv.slice(2);
  if (!host || !repoTag || sizes.length === 0) throw new Error('usage: pull-image.js HOST:PORT REPO:TAG LAYER_MIB...');
  const [repo, tag] = repoTag.split(':') as [string, string];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-bench-img-'));
  try {
    const cs = new ContentStore(path.join(dir, 'blobs'), path.join(dir, 'tmp'));
    const layers: Array<{ digest: string; size: number; diffId: string }> = [];
    const tars: Array<() => Promise<Buffer>> = [busyboxTar, ...sizes.map((s, i) => () => layerTar(Number(s), i))];
    for (const make of tars) {
      const tar = await make();
      const diffId = `sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`;
      const { digest, size } = cs.putBuffer(zlib.gzipSync(tar, { level: 6 }));
      layers.push({ digest, size, diffId });
    }
    const config = cs.putBuffer(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } })));
    const manifest = cs.putBuffer(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
          layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
        }),
      ),
    );
    await pushImage(new RegistryClient({ domain: host, credentials: null }), repo, tag, cs, manifest.digest as Digest);
    const total = layers.reduce((a, l) => a + l.size, 0);
    process.stdout.write(`${manifest.digest} ${total} ${layers.length}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
