/**
 * Docker's stream framing (pure). Without a TTY, attach/logs/exec output is multiplexed:
 * each frame is an 8-byte header [stream, 0, 0, 0, size (uint32 big-endian)] followed by
 * `size` bytes, stream 0 = stdin, 1 = stdout, 2 = stderr. With a TTY the bytes go raw.
 */

export type StreamId = 0 | 1 | 2;

/** Largest payload put in one frame; longer writes are split (docker uses 32 KiB buffers too). */
export const MAX_FRAME = 32 * 1024;

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

  /** Add bytes; returns the frames completed by them. Throws on a bad stream id. */
  push(data: Buffer): { stream: StreamId; data: Buffer }[] {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: { stream: StreamId; data: Buffer }[] = [];
    while (this.buf.length >= 8) {
      const s = this.buf[0]!;
      if (s > 2 || this.buf[1] !== 0 || this.buf[2] !== 0 || this.buf[3] !== 0) throw new Error(`bad frame header: ${this.buf.subarray(0, 8).toString('hex')}`);
      const size = this.buf.readUInt32BE(4);
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

export const RAW_STREAM = 'application/vnd.docker.raw-stream';
export const MULTIPLEXED_STREAM = 'application/vnd.docker.multiplexed-stream';

/**
 * The response that hands the connection over to the stream: docker's `101 UPGRADED`, or a
 * plain 200 when the client did not ask to upgrade. `multiplexed` is false with a TTY.
 */
export function hijackHead(upgrade: boolean, multiplexed: boolean, apiVersion: string): string {
  const type = multiplexed ? MULTIPLEXED_STREAM : RAW_STREAM;
  const lines = upgrade
    ? ['HTTP/1.1 101 UPGRADED', `Content-Type: ${type}`, 'Connection: Upgrade', 'Upgrade: tcp']
    : ['HTTP/1.1 200 OK', `Content-Type: ${type}`];
  lines.push(`Api-Version: ${apiVersion}`, 'Docker-Experimental: false', 'Ostype: linux', 'Server: hull');
  return `${lines.join('\r\n')}\r\n\r\n`;
}
