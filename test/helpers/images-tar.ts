/**
 * Build tar archives in memory for the image tests (layers, hostile layers, image archives),
 * with tar-stream, so each test states exactly which entries it feeds in.
 */
import { createRequire } from 'node:module';
import type * as TarStream from 'tar-stream';

const require = createRequire(import.meta.url);

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  data?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** A tar archive holding `entries` in order. */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const tar = require('tar-stream') as typeof TarStream;
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type,
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: e.mtime ?? new Date(1_600_000_000_000),
        linkname: e.linkname,
        devmajor: e.devmajor,
        devminor: e.devminor,
        size: type === 'file' ? (data?.length ?? 0) : 0,
        pax: e.pax,
      };
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, data ?? Buffer.alloc(0), cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface OciImageSpec {
  /** Layer blobs as stored (plain or gzip tar bytes) with the diff id to claim for each. */
  layers: { blob: Buffer; diffId: string; mediaType?: string }[];
  /** Replace the config bytes (e.g. unparsable JSON). */
  configBytes?: Buffer;
  /** Replace the manifest bytes. */
  manifestBytes?: Buffer;
  /** Edit the manifest object before it is serialised. */
  editManifest?: (m: Record<string, any>) => void;
  /** Name to annotate in index.json. */
  name?: string;
  /** Extra raw entries appended to the archive. */
  extra?: TarEntry[];
  /** Store a blob under a wrong name: [blob index in order config, manifest, layers..., bytes]. */
  corruptBlob?: { which: 'config' | 'manifest' | number; bytes: Buffer };
}

function sha(b: Buffer): string {
  // Imported lazily to keep this helper free of project modules.
  return 'sha256:' + require('node:crypto').createHash('sha256').update(b).digest('hex');
}

/** An OCI image-layout archive holding one image built from `spec`. */
export async function makeOciArchive(spec: OciImageSpec): Promise<Buffer> {
  const config =
    spec.configBytes ??
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) } }));
  const manifestObj: Record<string, any> = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: spec.layers.map((l) => ({
      mediaType: l.mediaType ?? (l.blob[0] === 0x1f ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar'),
      digest: sha(l.blob),
      size: l.blob.length,
    })),
  };
  spec.editManifest?.(manifestObj);
  const manifest = spec.manifestBytes ?? Buffer.from(JSON.stringify(manifestObj));
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha(manifest),
        size: manifest.length,
        ...(spec.name ? { annotations: { 'org.opencontainers.image.ref.name': spec.name } } : {}),
      },
    ],
  };
  const blobs: { name: string; data: Buffer }[] = [
    { name: `blobs/sha256/${sha(config).slice(7)}`, data: config },
    { name: `blobs/sha256/${sha(manifest).slice(7)}`, data: manifest },
    ...spec.layers.map((l) => ({ name: `blobs/sha256/${sha(l.blob).slice(7)}`, data: l.blob })),
  ];
  if (spec.corruptBlob) {
    const i = spec.corruptBlob.which === 'config' ? 0 : spec.corruptBlob.which === 'manifest' ? 1 : 2 + spec.corruptBlob.which;
    blobs[i] = { name: blobs[i]!.name, data: spec.corruptBlob.bytes };
  }
  return makeTar([
    { name: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    ...blobs.map((b) => ({ name: b.name, data: b.data })),
    { name: 'index.json', data: JSON.stringify(index) },
    ...(spec.extra ?? []),
  ]);
}

/** A layer tar and its diff id. */
export async function makeLayer(entries: TarEntry[]): Promise<{ tar: Buffer; diffId: string }> {
  const tar = await makeTar(entries);
  return { tar, diffId: sha(tar) };
}
