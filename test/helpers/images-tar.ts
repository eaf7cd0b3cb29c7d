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
