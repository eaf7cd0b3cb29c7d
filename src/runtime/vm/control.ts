/**
 * Talking to a running VM's agent over its hull.ctl port: exec, signals, shutdown. QEMU serves
 * that port's unix socket to one connection at a time, so callers go through hull-vmmux
 * (native/hull-vmmux.c), which multiplexes them by channel on that one connection.
 */
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Channel } from '../stdin-channel.js';
import { HullError } from '../../errors.js';
import type { ExecProcess, Stdio } from '../types.js';
import { encodeData, encodeFrame, encodeProcessRecords, FrameDecoder, T, decodeExit, type GuestProcessSpec } from './protocol.js';

/** sun_path holds 107 bytes: longer paths are reached through QEMU's cwd (the vm dir) in /proc. */
export function ctlAddress(socketPath: string, qemuPid: number): string {
  return Buffer.byteLength(socketPath) <= 107 ? socketPath : `/proc/${qemuPid}/cwd/${path.basename(socketPath)}`;
}

export function connectCtl(address: string, timeoutMs = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(address);
    const t = setTimeout(() => {
      s.destroy();
      reject(new HullError('UNAVAILABLE', 'the VM agent did not answer on its control port'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(new HullError('UNAVAILABLE', `cannot reach the VM's control port: ${e.message}`, { cause: e }));
    });
  });
}

/**
 * Sends one frame and closes (signals, shutdown). Through hull-vmmux a disconnect never reaches
 * the guest; straight to QEMU's port (`direct`) QEMU is given a moment to pass the bytes on first.
 */
export async function sendControl(address: string, type: number, channel: number, payload?: Buffer, o: { direct?: boolean } = {}): Promise<void> {
  const s = await connectCtl(address);
  await new Promise<void>((resolve) => s.end(encodeFrame(type, channel, payload), () => resolve()));
  if (o.direct) await new Promise((r) => setTimeout(r, 50));
  s.destroy();
}

/** Runs a process in the VM; resolves with its exit code (126/127 when it cannot start). */
export async function execInVm(address: string, proc: GuestProcessSpec, stdio: Stdio, onStarted?: () => void, onResizable?: ExecProcess['onResizable']): Promise<number> {
  const payload = encodeProcessRecords(proc);
  let s: net.Socket;
  try {
    s = await connectCtl(address);
  } finally {
    onStarted?.(); // connected (or not): the agent starts the session on its own from here
  }
  const ch = 1;
  const dec = new FrameDecoder();
  return new Promise<number>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, code?: number) => {
      if (done) return;
      done = true;
      stdio.stdin?.off('data', onIn);
      stdio.stdin?.off('end', onEnd);
      s.destroy();
      if (err) reject(err);
      else resolve(code!);
    };
    const onIn = (d: Buffer | string) => {
      let more = true;
      for (const f of encodeData(T.STDIN, ch, Buffer.isBuffer(d) ? d : Buffer.from(d))) more = s.write(f) && more;
      // backpressure: the agent stops reading its port while much stdin is queued for the process
      if (!more && stdio.stdin) {
        stdio.stdin.pause();
        s.once('drain', () => stdio.stdin?.resume());
      }
    };
    const onEnd = () => s.write(encodeFrame(T.STDIN_EOF, ch));
    s.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = dec.push(chunk);
      } catch (e) {
        return finish(e as Error);
      }
      for (const f of frames) {
        if (f.channel !== ch && f.type !== T.ERROR) continue;
        if (f.type === T.STDOUT) stdio.stdout.write(f.payload);
        else if (f.type === T.STDERR) stdio.stderr.write(f.payload);
        else if (f.type === T.ERROR) return finish(new HullError('FAILED_PRECONDITION', `VM agent: ${f.payload.toString('utf8')}`));
        else if (f.type === T.EXIT) {
          const x = decodeExit(f.payload);
          if (x.reason) stdio.stderr.write(`${x.reason}\n`);
          return finish(null, x.code);
        }
      }
    });
    // the VM stopped under the session: its process died with it, as docker reports (SIGKILL)
    s.on('close', () => finish(null, 137));
    s.on('error', () => undefined);
    s.write(encodeFrame(T.EXEC, ch, payload));
    if (proc.tty) {
      onResizable?.((rows, cols) => {
        if (done || rows <= 0 || cols <= 0) return false;
        const w = Buffer.alloc(4);
        w.writeUInt16LE(Math.min(rows, 65535), 0);
        w.writeUInt16LE(Math.min(cols, 65535), 2);
        s.write(encodeFrame(T.RESIZE, ch, w));
        return true;
      });
    }
    if (proc.stdin && stdio.stdin) {
      stdio.stdin.on('data', onIn);
      stdio.stdin.on('end', onEnd);
    } else if (!proc.tty) {
      s.write(encodeFrame(T.STDIN_EOF, ch));
    }
  });
}

/**
 * The stdin channel of a running VM's main process (stdin-channel.ts): one connection to the
 * agent's control port (channel 0, which hull-vmmux passes through) fed by every attach in
 * turn, as STDIN frames; ending the sink sends STDIN_EOF (the agent closes the process's stdin
 * once what it queued went in). Backpressure: a write completes once the socket took it (the
 * agent stops reading its port while much stdin is queued). Gone when the VM's side closes.
 */
export function mainStdinChannel(address: string): Channel {
  const conn = connectCtl(address);
  let markGone!: () => void;
  const gone = new Promise<void>((resolve) => (markGone = resolve));
  conn.then(
    (s) => {
      s.on('data', () => undefined); // nothing comes for channel 0 on this connection
      s.on('error', () => undefined);
      s.on('close', markGone);
    },
    () => markGone(),
  );
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      conn.then((s) => {
        let more = true;
        for (const f of encodeData(T.STDIN, 0, chunk)) more = s.write(f) && more;
        if (more) cb();
        else s.once('drain', () => cb());
      }, (e: Error) => cb(e));
    },
    final(cb) {
      conn.then((s) => s.end(encodeFrame(T.STDIN_EOF, 0), () => cb()), () => cb());
    },
    destroy(err, cb) {
      conn.then((s) => s.destroy(), () => undefined);
      cb(err);
    },
  });
  sink.on('error', () => markGone());
  return { sink, gone };
}
