/** Small stream helpers for the load/save/import paths. */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { invalid } from '../errors.js';

/** Read the first `n` bytes of a stream and return them with a stream that still yields everything. */
export async function peek(src: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(b);
    have += b.length;
  }
  const first = Buffer.concat(chunks);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  const stream = Readable.from(rest(), { objectMode: false, highWaterMark: 1 << 20 });
  stream.on('close', () => {
    if (!src.destroyed) src.destroy();
  });
  return { head: first.subarray(0, n), stream };
}

/** Open FILE ('-' = `stdin`) for reading, naming it in the error when it cannot be read. */
export function openInput(file: string, stdin: Readable, what = 'input'): Readable {
  if (file === '-') return stdin;
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) throw invalid(`${what} ${file}: is a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw invalid(`${what} ${file}: no such file`);
    throw e;
  }
  return fs.createReadStream(file, { highWaterMark: 1 << 20 });
}

/** Docker's GOARCH names for Node's process.arch. */
export function goArch(arch: string = process.arch): string {
  const m: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return m[arch] ?? arch;
}

/** RFC 3339 without fractional seconds when there are none (as Go's time.RFC3339Nano prints). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

/** The time a build should record: SOURCE_DATE_EPOCH (seconds) when set, otherwise now. */
export function buildTime(env: NodeJS.ProcessEnv = process.env): Date {
  const s = env.SOURCE_DATE_EPOCH;
  if (s === undefined || s === '') return new Date();
  if (!/^\d+$/.test(s)) throw invalid(`SOURCE_DATE_EPOCH=${JSON.stringify(s)} is not a whole number of seconds`);
  return new Date(Number(s) * 1000);
}
