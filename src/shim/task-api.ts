/**
 * The ttrpc service containerd calls (containerd.task.v2.Task, src/shim/proto/shim.proto):
 * each method decodes its request, calls the ShimService, and encodes the response. Pause,
 * Resume, Checkpoint and Update are answered Unimplemented (a VM pod cannot freeze or
 * checkpoint here; its size is fixed at boot).
 */
import { unimplemented } from './grpc-status.js';
import { any, decode, decodeRaw, encode, timestamp } from './protos.js';
import type { ShimService } from './service.js';
import type { Handler, Services } from './ttrpc-server.js';
import { version } from '../version.js';

// decoded protobuf messages: plain objects whose fields the handlers read by name
type Req = Record<string | symbol, any>;

const P = 'containerd.task.v2.';
/** Where a decoded request keeps its bytes (for fields read raw). */
const RAW = Symbol('raw');

/** Logs each call with its duration and outcome (the shim's -debug flag). */
let trace: ((m: string) => void) | undefined;

function method(reqType: string, resType: string, fn: (r: Req) => Promise<Record<string, unknown>> | Record<string, unknown>): Handler {
  return async (payload) => {
    const t0 = Date.now();
    const r = decode<Req>(reqType, payload);
    r[RAW] = payload;
    const what = `${reqType.slice(P.length).replace(/(Task)?Request$/, '')} ${r.id ?? ''}${r.execId ? `/${r.execId}` : ''}`;
    try {
      const out = encode(resType, await fn(r));
      trace?.(`${what}: ok in ${Date.now() - t0} ms`);
      return out;
    } catch (e) {
      trace?.(`${what}: ${(e as Error).message} (${Date.now() - t0} ms)`);
      throw e;
    }
  };
}

const EMPTY = 'google.protobuf.Empty';

export function taskService(svc: ShimService, onShutdown: () => void, debugLog?: (m: string) => void): Services {
  trace = debugLog;
  const u = (name: string): Handler => async () => {
    throw unimplemented(name);
  };
  return {
    'containerd.task.v2.Task': {
      State: method(`${P}StateRequest`, `${P}StateResponse`, (r) => {
        const s = svc.state(r.id, r.execId);
        return { ...s, exitedAt: timestamp(s.exitedAt) };
      }),
      Create: method(`${P}CreateTaskRequest`, `${P}CreateTaskResponse`, (r) => svc.create({
        id: r.id, bundle: r.bundle, terminal: r.terminal, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, checkpoint: r.checkpoint,
        rootfs: (r.rootfs as Req[]).map((m) => ({ type: m.type, source: m.source, target: m.target, options: m.options })),
      })),
      Start: method(`${P}StartRequest`, `${P}StartResponse`, (r) => svc.start(r.id, r.execId)),
      Delete: method(`${P}DeleteRequest`, `${P}DeleteResponse`, async (r) => {
        const d = await svc.delete(r.id, r.execId);
        return { pid: d.pid, exitStatus: d.exitStatus, exitedAt: timestamp(d.exitedAt) };
      }),
      Pids: method(`${P}PidsRequest`, `${P}PidsResponse`, async (r) => ({ processes: (await svc.pids(r.id)).map((pid) => ({ pid })) })),
      Pause: u('Pause'),
      Resume: u('Resume'),
      Checkpoint: u('Checkpoint'),
      Update: u('Update'),
      Kill: method(`${P}KillRequest`, EMPTY, async (r) => {
        await svc.kill(r.id, r.execId, r.signal, r.all);
        return {};
      }),
      Exec: method(`${P}ExecProcessRequest`, EMPTY, async (r) => {
        // the process spec is an Any holding JSON (containerd's typeurl for specs.Process): kept raw
        const spec = decodeRaw<{ spec?: { type_url: string; value: Uint8Array } | null }>(`${P}ExecProcessRequest`, r[RAW]).spec;
        await svc.exec({ id: r.id, execId: r.execId, terminal: r.terminal, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, spec: spec ? { typeUrl: spec.type_url, value: Buffer.from(spec.value ?? []) } : null });
        return {};
      }),
      ResizePty: method(`${P}ResizePtyRequest`, EMPTY, (r) => {
        svc.resize(r.id, r.execId, r.width, r.height);
        return {};
      }),
      CloseIO: method(`${P}CloseIORequest`, EMPTY, (r) => {
        svc.closeIo(r.id, r.execId, r.stdin);
        return {};
      }),
      Wait: method(`${P}WaitRequest`, `${P}WaitResponse`, async (r) => {
        const w = await svc.wait(r.id, r.execId);
        return { exitStatus: w.exitStatus, exitedAt: timestamp(w.exitedAt) };
      }),
      Stats: method(`${P}StatsRequest`, `${P}StatsResponse`, (r) => {
        const s = svc.stats(r.id);
        return {
          stats: any('io.containerd.cgroups.v1.Metrics', {
            pids: { current: s.pids, limit: 0 },
            cpu: { usage: { total: s.cpuNs, kernel: 0, user: 0 } },
            memory: { usage: { usage: s.memoryBytes, limit: s.limitBytes, max: 0, failcnt: 0 }, cache: 0, rss: s.memoryBytes, totalInactiveFile: 0 },
          }),
        };
      }),
      Connect: method(`${P}ConnectRequest`, `${P}ConnectResponse`, () => ({ shimPid: process.pid, taskPid: svc.qemuPid, version: `hull ${version()}` })),
      Shutdown: method(`${P}ShutdownRequest`, EMPTY, async (r) => {
        if (await svc.shutdown(r.now)) onShutdown();
        return {};
      }),
    },
  };
}
