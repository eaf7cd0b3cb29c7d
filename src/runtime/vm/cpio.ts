/**
 * A minimal writer of the "newc" cpio format the kernel unpacks as an initramfs. Used to append
 * the per-run spec to the cached base initramfs (the kernel unpacks concatenated archives in
 * order). Pure.
 */
export interface CpioEntry {
  /** Relative path, no leading '/'. */
  name: string;
  /** File content; omit for a directory. */
  data?: Buffer;
  /** Permission bits; default 0644 for files, 0755 for directories. */
  mode?: number;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const hex8 = (n: number) => n.toString(16).padStart(8, '0');

function header(ino: number, mode: number, size: number, nameLen: number): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return '070701' + [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameLen, 0].map(hex8).join('');
}

export function newcArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    off += b.length;
  };
  const entry = (ino: number, name: string, mode: number, data: Buffer) => {
    const nameZ = Buffer.from(`${name}\0`, 'utf8');
    push(Buffer.from(header(ino, mode, data.length, nameZ.length), 'ascii'));
    push(nameZ);
    push(Buffer.alloc(pad4(off)));
    push(data);
    push(Buffer.alloc(pad4(off)));
  };
  entries.forEach((e, i) => {
    if (!e.name || e.name.startsWith('/') || e.name.split('/').includes('..')) throw new Error(`cpio: bad entry name "${e.name}"`);
    const isDir = e.data === undefined;
    entry(i + 1, e.name, (isDir ? 0o040000 : 0o100000) | (e.mode ?? (isDir ? 0o755 : 0o644)), e.data ?? Buffer.alloc(0));
  });
  entry(0, 'TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Pure: the content of regular file `name` in a newc archive (the first one of that name), or undefined. */
export function newcFile(archive: Buffer, name: string): Buffer | undefined {
  let off = 0;
  while (off + 110 <= archive.length) {
    const h = archive.toString('ascii', off, off + 110);
    if (!h.startsWith('070701') && !h.startsWith('070702')) return undefined;
    const field = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameLen = field(11);
    const n = archive.toString('utf8', off + 110, off + 110 + nameLen - 1);
    if (n === 'TRAILER!!!') return undefined;
    const data = off + 110 + nameLen + pad4(110 + nameLen);
    if ((n === name || n === `./${name}`) && (mode & 0o170000) === 0o100000) return archive.subarray(data, data + size);
    off = data + size + pad4(size);
  }
  return undefined;
}
