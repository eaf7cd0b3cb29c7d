/**
 * Binary-safe pax extended attributes for tar-stream.
 *
 * tar-stream decodes every pax record value as UTF-8, which destroys binary xattr values such as
 * `security.capability` (file capabilities of ping, etc.). Its extractor calls
 * `headers.decodePax(buf)` through the module object, so hull wraps that one function: the
 * result is what tar-stream produced before, plus, under the RAW_XATTRS symbol, the exact bytes
 * of every `SCHILY.xattr.*` value. Object.assign (used by tar-stream to merge global and
 * per-entry pax headers) copies symbol keys, so the raw values reach `header.pax`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

export const RAW_XATTRS = Symbol.for('hull.pax.rawXattrs');

/** Parse pax records (`LEN KEY=VALUE\n`) keeping each xattr value as bytes (pure). */
export function paxXattrs(buf: Uint8Array): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  while (b.length > 0) {
    const sp = b.indexOf(0x20);
    if (sp <= 0) break;
    const len = Number(b.subarray(0, sp).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= sp + 1 || len > b.length) break;
    const rec = b.subarray(sp + 1, len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq > 0) {
      const key = rec.subarray(0, eq).toString('utf8');
      if (key.startsWith('SCHILY.xattr.')) out.set(key.slice('SCHILY.xattr.'.length), Buffer.from(rec.subarray(eq + 1)));
    }
    b = b.subarray(len);
  }
  return out;
}

let installed = false;

/** Wrap tar-stream's pax decoder once per process (idempotent). */
export function installRawXattrs(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('tar-stream'));
  const headers = require(path.join(dir, 'headers.js')) as { decodePax: (b: Uint8Array) => Record<string | symbol, unknown> };
  const orig = headers.decodePax;
  if (typeof orig !== 'function') return; // a tar-stream without it: fall back to its own decoding
  headers.decodePax = function decodePaxWithRawXattrs(b: Uint8Array) {
    const r = orig(b);
    const raw = paxXattrs(b);
    if (raw.size > 0) r[RAW_XATTRS] = raw;
    return r;
  };
}
