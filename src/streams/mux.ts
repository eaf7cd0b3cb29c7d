/**
 * Docker's stream framing (stdcopy), pure. Without a TTY, attach, exec and logs output is
 * multiplexed: each frame is an 8-byte header [stream, 0, 0, 0, size (uint32 big-endian)]
 * followed by `size` bytes; stream 0 = stdin, 1 = stdout, 2 = stderr. With a TTY the bytes go
 * raw. The decoder takes bytes in chunks of any size (a header or a payload split anywhere).
 */
import type { Readable, Writable } from 'node:stream';

export type StreamId = 0 | 1 | 2;

/** Largest payload put in one frame; longer writes are split (docker uses 32 KiB buffers too). */
export const MAX_FRAME = 32 * 1024;

/** Largest payload the decoder accepts in one frame (a corrupt header must not allocate GiBs), bytes. */
export const MAX_DECODED_FRAME = 16 << 20;

/** Frame `data` for `stream`; data longer than MAX_FRAME becomes several frames. */
export function frame(stream: StreamId, data: Buffer): Buffer {
  if (data.length === 0) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_FRAME) {
    const chunk = data.subarray(off, Math.min(off + MAX_FRAME, data.length));
    const h = Buffer.alloc(8);
    h[0] = stream;
    h.writeUInt32BE(chunk.length, 4);
    parts.push(h, chunk);
  }
  return Buffer.concat(parts);
}

/** Incremental decoder of a multiplexed stream: feed bytes, get whole frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Add bytes; returns the frames completed by them. Throws on a bad header. */
  push(data: Buffer): { stream: StreamId; data: Buffer }[] {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: { stream: StreamId; data: Buffer }[] = [];
    while (this.buf.length >= 8) {
      const s = this.buf[0]!;
      if (s > 2 || this.buf[1] !== 0 || this.buf[2] !== 0 || this.buf[3] !== 0) throw new Error(`bad frame header: ${this.buf.subarray(0, 8).toString('hex')}`);
      const size = this.buf.readUInt32BE(4);
      if (size > MAX_DECODED_FRAME) throw new Error(`bad frame header: a frame of ${size} bytes`);
      if (this.buf.length < 8 + size) break;
      out.push({ stream: s as StreamId, data: this.buf.subarray(8, 8 + size) });
      this.buf = this.buf.subarray(8 + size);
    }
    return out;
  }

  /** Bytes of an unfinished frame still held. */
  get pending(): number {
    return this.buf.length;
  }
}

/**
 * Split a multiplexed stream into `stdout` and `stderr` (docker's stdcopy.StdCopy), honouring
 * the writers' backpressure. Resolves once `src` ended; rejects on a bad frame or a stream
 * that ends inside a frame.
 */
export function demux(src: Readable, stdout: Writable, stderr: Writable): Promise<void> {
  const dec = new FrameDecoder();
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      src.off('data', onData);
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      let frames;
      try {
        frames = dec.push(chunk);
      } catch (e) {
        return fail(e as Error);
      }
      let full = false;
      for (const f of frames) {
        const w = f.stream === 2 ? stderr : stdout;
        if (!w.write(f.data)) full = true;
      }
      if (full) {
        src.pause();
        let waiting = 0;
        const again = () => {
          if (--waiting === 0) src.resume();
        };
        for (const w of new Set([stdout, stderr])) {
          if (w.writableNeedDrain) {
            waiting++;
            w.once('drain', again);
          }
        }
        if (waiting === 0) src.resume();
      }
    };
    src.on('data', onData);
    src.once('error', fail);
    src.once('end', () => (dec.pending ? fail(new Error(`the stream ended inside a frame (${dec.pending} bytes held)`)) : resolve()));
  });
}
