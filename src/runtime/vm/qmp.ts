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
