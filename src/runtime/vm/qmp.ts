/**
 * A minimal QMP client (QEMU Machine Protocol, JSON lines over the VM's unix socket): the
 * greeting, `qmp_capabilities`, then one command and its reply; asynchronous events in between
 * are skipped. Used for docker pause/unpause of a VM (`stop` / `cont`: the vCPUs halt, the
 * guest keeps its memory). Every reply is bounded (1 MiB) and times out.
 */
import net from 'node:net';
import { HullError } from '../../errors.js';

/** Runs `command` over the QMP socket; resolves with its `return` value. */
export function qmpCommand(socket: string, command: string, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    let step = 0; // 0: greeting, 1: capabilities, 2: the command
    const fail = (why: string) => {
      clearTimeout(t);
      s.destroy();
      reject(new HullError('UNAVAILABLE', `QMP ${command} on ${socket}: ${why}`));
    };
    const t = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    s.on('error', (e) => fail(e.message));
    s.on('close', () => step < 3 && fail('the VM closed its monitor (has it stopped?)'));
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (buf.length > 1 << 20) return fail('reply too long');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return fail(`not JSON: ${line.slice(0, 200)}`);
        }
        if ('event' in msg) continue;
        if ('error' in msg) return fail(JSON.stringify(msg.error));
        if (step === 0 && 'QMP' in msg) {
          step = 1;
          s.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if (step === 1 && 'return' in msg) {
          step = 2;
          s.write(`${JSON.stringify({ execute: command })}\n`);
        } else if (step === 2 && 'return' in msg) {
          step = 3;
          clearTimeout(t);
          // QMP serves one client at a time, and QEMU keeps a half-closed one: close it whole
          s.destroy();
          resolve(msg.return);
        }
      }
    });
  });
}

/**
 * A QMP session of several commands on one connection (template save and restore): connect
 * (retried while QEMU is still creating its socket), negotiate, then `run` one command at a time.
 */
export class QmpSession {
  private buf = '';
  private waiters: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private events: { name: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  private constructor(private readonly s: net.Socket, private readonly what: string) {
    s.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      this.closed = true;
      const gone = () => new HullError('UNAVAILABLE', `QMP ${what}: QEMU closed its monitor`);
      for (const w of this.waiters.splice(0)) w.reject(gone());
      for (const w of this.events.splice(0)) w.reject(gone());
    });
  }

  /**
   * A session on a monitor QEMU inherited as one end of a socketpair (`-chardev socket,fd=N`):
   * nothing to wait for, so commands can be written before QEMU has even started; QEMU runs them
   * in order once its main loop does. `greeting` resolves with QEMU's greeting.
   */
  static attach(s: net.Socket, what: string): { session: QmpSession; greeting: Promise<unknown> } {
    const session = new QmpSession(s, what);
    return { session, greeting: session.next(60_000) };
  }

  static async open(socket: string, timeoutMs = 10_000): Promise<QmpSession> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      let q: QmpSession | undefined;
      try {
        const s = await new Promise<net.Socket>((resolve, reject) => {
          const c = net.connect(socket);
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        });
        q = new QmpSession(s, socket);
        await q.next(end - Date.now()); // the greeting
        await q.run('qmp_capabilities');
        return q;
      } catch (e) {
        q?.close(); // QMP serves one client at a time: never leave a half-open one
        if (Date.now() > end) throw new HullError('UNAVAILABLE', `QMP ${socket}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  private onData(d: string): void {
    this.buf += d;
    if (this.buf.length > 1 << 20) return void this.s.destroy();
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('event' in msg) {
        for (const w of this.events.filter((e) => e.name === msg.event)) {
          this.events.splice(this.events.indexOf(w), 1);
          w.resolve();
        }
        continue;
      }
      const w = this.waiters.shift();
      if (!w) continue;
      if ('error' in msg) w.reject(new HullError('UNAVAILABLE', `QMP: ${JSON.stringify(msg.error)}`));
      else w.resolve('QMP' in msg ? msg.QMP : msg.return);
    }
  }

  private next(timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new HullError('UNAVAILABLE', `QMP ${this.what}: QEMU closed its monitor`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new HullError('UNAVAILABLE', `QMP ${this.what}: no answer within ${timeoutMs} ms`)), Math.max(1, timeoutMs));
      this.waiters.push({ resolve: (v) => (clearTimeout(t), resolve(v)), reject: (e) => (clearTimeout(t), reject(e)) });
    });
  }

  /** Resolves when QEMU next sends event `name` (rejects when the monitor closes or after timeoutMs). */
  event(name: string, timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new HullError('UNAVAILABLE', `QMP ${this.what}: QEMU closed its monitor`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.events = this.events.filter((e) => e.resolve !== done);
        reject(new HullError('UNAVAILABLE', `QMP ${this.what}: no ${name} within ${timeoutMs} ms`));
      }, Math.max(1, timeoutMs));
      const done = () => (clearTimeout(t), resolve());
      this.events.push({ name, resolve: done, reject: (e) => (clearTimeout(t), reject(e)) });
    });
  }

  /** Runs one command; resolves with its `return` value. */
  run(execute: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const p = this.next(timeoutMs);
    this.s.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    return p;
  }

  close(): void {
    this.s.destroy();
  }
}
