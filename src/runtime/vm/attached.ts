/**
 * Foreground runs: QEMU is a child of this process, its ports wired to inherited sockets.
 *   fd 7: hull.main (frames both ways: stdin, signals, resize in; the exit out)
 *   fd 8: hull.stdout, fd 9: hull.stderr (raw bytes of the main process)
 * The exit code is read from the status file once QEMU is gone: everything the guest wrote is
 * then flushed. QEMU dies with this process (parent-death signal), and the guest ends the run
 * when hull.main loses its host.
 */
import fs from 'node:fs';
import type { Duplex, Readable, Writable } from 'node:stream';
import { HullError } from '../../errors.js';
import type { ExitInfo, InstanceSpec, Stdio } from '../types.js';
import { cgroupPids, readVmCgroup } from './cgroup.js';
import { guestRunSpec, layerMode, prepare, type Monitor } from './launch.js';
import { settleKeptLayer } from './layer.js';
import { procStartTime } from '../../util/proc.js';
import { decodeStatus, encodeData, encodeFrame, T } from './protocol.js';
import path from 'node:path';
import { connectCtl, ctlAddress } from './control.js';
import { AGENT_WAIT_MS, encodeRunFrame, RestoreFailed, resumeRestored, waitStatus } from './snapshot.js';
import net from 'node:net';
import { reniceAll, stopGuest, swapDisk } from './pool.js';
import { QmpSession } from './qmp.js';

/** A start the guest refused (command not found: 127, not executable: 126, other: 125). */
export class VmStartError extends HullError {
  constructor(message: string, readonly exitCode: number) {
    super('INVALID_ARGUMENT', message);
  }
}

/** Pure: the ExitInfo for what the status file says (or does not say) once QEMU is gone. */
export function exitFromStatus(status: Buffer, facts: { killedByHull: boolean; oomKilled: boolean; qemuErr: string; qemuSignal?: number }): ExitInfo {
  let st;
  try {
    st = decodeStatus(status);
  } catch (e) {
    return { exitCode: 255, oomKilled: facts.oomKilled, error: `unreadable guest status: ${(e as Error).message}` };
  }
  if (st.exit && !st.ready && st.exit.reason) throw new VmStartError(st.exit.reason, st.exit.code);
  if (st.exit) return { exitCode: st.exit.code, oomKilled: facts.oomKilled || st.exit.oomKilled };
  if (facts.killedByHull) return { exitCode: 137, oomKilled: facts.oomKilled };
  if (facts.oomKilled) return { exitCode: 137, oomKilled: true, error: 'QEMU was killed by the VM cgroup memory limit' };
  if (facts.qemuSignal !== undefined) return { exitCode: 128 + facts.qemuSignal, oomKilled: false, error: `QEMU was killed by signal ${facts.qemuSignal}` };
  const why = facts.qemuErr.trim().split('\n').slice(-3).join(' ').slice(0, 500);
  return {
    exitCode: 255, oomKilled: false,
    error: st.ready ? `the VM stopped without an exit code (guest kernel panic or QEMU killed)${why ? `: ${why}` : ''}` : `the VM failed to boot${why ? `: ${why}` : ''}`,
  };
}

function safeStatus(status: Buffer): ReturnType<typeof decodeStatus> {
  try {
    return decodeStatus(status);
  } catch {
    return {};
  }
}

/**
 * A restored QEMU (runtime/vm/snapshot.ts): load the template's state, continue, send the run,
 * then a bounded wait for the agent's READY (or a start failure's EXIT). Anything else is a
 * failed restore: QEMU is killed and RestoreFailed thrown (the caller boots cold; nothing ran).
 */
export async function resumeOrFail(prep: Awaited<ReturnType<typeof prepare>>, child: import('node:child_process').ChildProcess, pipes: unknown[], closed: Promise<unknown>, qemuErr: () => string): Promise<void> {
  const r = prep.restore!;
  const runPort = pipes[r.runIndex] as Duplex;
  runPort.on('error', () => undefined);
  const ended = closed.then(() => {
    throw new Error(`QEMU ended: ${qemuErr().trim().split('\n').pop() ?? ''}`);
  }, (e: Error) => {
    throw e;
  });
  ended.catch(() => undefined);
  try {
    await Promise.race([resumeRestored(pipes[r.monitorIndex] as net.Socket, r.stateFd, runPort, r.frame), ended]);
    const w = await waitStatus(prep.files.status, child, AGENT_WAIT_MS, (st) => !!st.ready || !!st.exit);
    if (w !== 'yes') throw new Error(w === 'gone' ? `QEMU ended: ${qemuErr().trim().split('\n').pop() ?? ''}` : `the guest agent did not answer within ${AGENT_WAIT_MS / 1000} s`);
  } catch (e) {
    child.kill('SIGKILL');
    await closed.catch(() => undefined);
    throw new RestoreFailed(prep.boot.boot === 'restore' ? prep.boot.template.dir : '', (e as Error).message);
  }
}

/** The ports of a foreground guest, however it started. */
interface Guest {
  pid: number;
  main: Duplex;
  gout: Readable;
  gerr: Readable;
  /** Resolves with QEMU's exit code once it is gone (null: killed by a signal). */
  closed: Promise<number | null>;
  qemuErr(): string;
  how(): string;
}

/** A QEMU of this run's own, a child of this process, its ports inherited socketpairs. */
function spawnedGuest(prep: Awaited<ReturnType<typeof prepare>>): { guest: Guest; child: import('node:child_process').ChildProcess; pipes: unknown[] } {
  const child = prep.spawn(
    { main: { kind: 'fd', fd: 7 }, stdout: { kind: 'fd', fd: 8 }, stderr: { kind: 'fd', fd: 9 } },
    { base: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'], detached: false, pdeathsig: true },
  );
  const pipes = child.stdio as unknown as (Duplex | null)[];
  let qemuErr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (qemuErr = (qemuErr + d).slice(-8000)));
  let how = '';
  const closed = new Promise<number | null>((resolve, reject) => {
    child.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot start QEMU: ${e.message}`, { cause: e, hint: 'apt-get install qemu-system-x86' })));
    child.on('close', (code, sig) => {
      how = sig ? `QEMU killed by ${sig}` : `QEMU exit code ${code}`;
      resolve(code);
    });
  });
  return { guest: { pid: child.pid ?? 0, main: pipes[7] as Duplex, gout: pipes[8] as Readable, gerr: pipes[9] as Readable, closed, qemuErr: () => qemuErr, how: () => how }, child, pipes };
}

/** A claimed pool guest did not take its run: it is stopped, and the run restores a guest of its own. */
export class PoolClaimFailed extends Error {}

/**
 * A guest claimed from the warm pool (runtime/vm/pool.ts): its image disk swapped in, its ports
 * connected (QEMU listens on them), its threads back to nice 0, then `cont` and the run's
 * T_RESUME frame, and a bounded wait for the agent's READY (or a start failure's EXIT).
 */
async function claimedGuest(prep: Awaited<ReturnType<typeof prepare>>, frame: () => Buffer): Promise<Guest> {
  const c = prep.pooled!;
  const dir = prep.files.dir;
  const addr = (n: string) => ctlAddress(path.join(dir, n), c.pid);
  const alive = () => procStartTime(c.pid) === c.startTime;
  const socks: net.Socket[] = [];
  try {
    const qmp = await QmpSession.open(addr('qmp.sock'), 2000); // a ready guest's monitor is up: no long wait
    try {
      await swapDisk(qmp, c, prep.disk);
      for (const n of ['out.sock', 'err.sock', 'main.sock', 'run.sock']) socks.push(await connectCtl(addr(n)));
      for (const s of socks) s.on('error', () => undefined);
      // QEMU accepts in its main loop: the guest must see every port connected when it resumes
      for (const end = Date.now() + 5000; ;) {
        const devs = (await qmp.run('query-chardev')) as { label: string; filename: string }[];
        if (devs.filter((d) => ['p1', 'p2', 'p4', 'p6'].includes(d.label)).every((d) => !d.filename.startsWith('disconnected'))) break;
        if (Date.now() > end) throw new Error('QEMU did not accept the ports');
        await new Promise((r) => setTimeout(r, 1));
      }
      for (const pid of [c.pid, ...(prep.cgroup ? cgroupPids(prep.cgroup) : [])]) reniceAll(pid, 0);
      await qmp.run('cont');
    } finally {
      qmp.close();
    }
    socks[3]!.end(frame());
    const w = await waitStatus(prep.files.status, alive, AGENT_WAIT_MS, (st) => !!st.ready || !!st.exit);
    if (w !== 'yes') throw new Error(w === 'gone' ? 'QEMU ended' : `the guest agent did not answer within ${AGENT_WAIT_MS / 1000} s`);
  } catch (e) {
    for (const s of socks) s.destroy();
    await stopGuest(dir, { ...c, cgroup: prep.cgroup }).catch(() => undefined);
    throw new PoolClaimFailed(`the pool guest did not take the run: ${(e as Error).message}`);
  }
  const [gout, gerr, main] = socks as [net.Socket, net.Socket, net.Socket];
  const ended = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
  // QEMU is not this process's child: it is gone when its ports closed and its shell wrote qemu.rc
  const closed = Promise.all([ended(gout), ended(gerr), ended(main)]).then(async () => {
    for (const end = Date.now() + 5000; ;) {
      try {
        const rc = fs.readFileSync(path.join(dir, 'qemu.rc'), 'utf8').trim();
        if (rc) return Number(rc) >= 128 ? null : Number(rc);
      } catch {
        // not yet
      }
      if (Date.now() > end) {
        if (alive()) process.kill(c.pid, 'SIGKILL');
        return null;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  });
  const err = () => {
    try {
      return fs.readFileSync(path.join(dir, 'qemu.err'), 'utf8');
    } catch {
      return '';
    }
  };
  return { pid: c.pid, main, gout, gerr, closed, qemuErr: err, how: () => 'QEMU ended' };
}

export async function runVmAttached(root: string, spec: InstanceSpec, stdio: Stdio, onStarted?: (pid: number) => void, onMonitor?: (m: Monitor) => void): Promise<ExitInfo> {
  const out = stdio.stdout as Writable & { columns?: number; rows?: number };
  const mode = { attached: true, rows: out.rows, cols: out.columns };
  const prep = await prepare(root, spec, mode);
  let killedByHull = false;
  try {
    const spawned = prep.pooled ? undefined : spawnedGuest(prep);
    const g = spawned ? spawned.guest : await claimedGuest(prep, () => encodeRunFrame(guestRunSpec(spec, mode)));
    const { main, gout, gerr, closed, pid } = g;
    onMonitor?.({ pid, startTime: procStartTime(pid) ?? 0, accel: prep.accel, cgroup: prep.cgroup, kernelRelease: prep.kernelRelease, mux: prep.mux, boot: prep.pooled ? 'pool' : prep.boot.boot === 'restore' ? 'restored' : 'cold' });
    onStarted?.(pid);
    gout.on('data', (d: Buffer) => out.write(d));
    gerr.on('data', (d: Buffer) => stdio.stderr.write(d));
    main.on('error', () => undefined);
    main.on('data', () => undefined); // EXIT is read from the status file; drain the port
    if (spawned && prep.restore) await resumeOrFail(prep, spawned.child, spawned.pipes, closed, g.qemuErr);
    const stdin = spec.process.stdin ? stdio.stdin : null;
    const onIn = (d: Buffer | string) => {
      for (const f of encodeData(T.STDIN, 0, Buffer.isBuffer(d) ? d : Buffer.from(d))) main.write(f);
    };
    const onEnd = () => {
      if (!spec.process.terminal) main.write(encodeFrame(T.STDIN_EOF, 0));
    };
    stdin?.on('data', onIn);
    stdin?.on('end', onEnd);
    const onResize = () => {
      const w = Buffer.alloc(4);
      w.writeUInt16LE(out.rows ?? 24, 0);
      w.writeUInt16LE(out.columns ?? 80, 2);
      main.write(encodeFrame(T.RESIZE, 0, w));
    };
    if (spec.process.terminal) out.on('resize', onResize);
    const fwd = (sig: NodeJS.Signals) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15, 0);
      if (!main.destroyed) main.write(encodeFrame(T.SIGNAL, 0, b));
    };
    // docker's sig-proxy: only while nobody else handles the signal (a library caller may)
    const proxied: NodeJS.Signals[] = (['SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).filter((s) => process.listenerCount(s) === 0);
    for (const s of proxied) process.on(s, fwd);
    let code: number | null;
    try {
      code = await closed;
    } finally {
      for (const s of proxied) process.off(s, fwd);
      stdin?.off('data', onIn);
      stdin?.off('end', onEnd);
      if (spec.process.terminal) out.off('resize', onResize);
      main.destroy();
    }
    const status = fs.existsSync(prep.files.status) ? fs.readFileSync(prep.files.status) : Buffer.alloc(0);
    const oom = prep.cgroup ? readVmCgroup(prep.cgroup).oomKilled : false;
    let qemuErr = g.qemuErr();
    if (code === 125 && !status.length && !qemuErr) qemuErr = 'could not join the VM cgroup';
    if (layerMode(spec)) settleKeptLayer(spec, status);
    return exitFromStatus(status, { killedByHull, oomKilled: oom, qemuErr: qemuErr.trim() ? qemuErr : g.how() });
  } finally {
    killedByHull = false;
    await prep.release();
  }
}
