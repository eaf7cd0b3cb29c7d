/**
 * The network dimension of a contrast: TCP round trips (sockperf ping-pong, --full-rtt: median
 * and p99) and throughput (iperf3) from the host to an instance on the default bridge, from the
 * host through a published port (127.0.0.1), and from one instance to another on the bridge;
 * the bare host's loopback as the reference. The same Debian binaries run on both ends: the
 * host's iperf3 and sockperf with the shared libraries they load, copied into a directory that
 * is mounted into the instances and run through their own dynamic loader. Traffic goes only to
 * 127.0.0.1 and to addresses on the bridge hull made. Every instance is removed in `finally`.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { layout } from '../paths.js';
import { checkAbort, pause } from './abort.js';
import type { Driver, IdleInstance } from './driver.js';
import { shipTools, shippedCommand } from './tools.js';
import { lastLine, timedRun } from './spawn.js';
import { median } from './stats.js';
import type { Accel, NetFigure, NetworkResult } from './types.js';

export interface NetworkOptions {
  /** Seconds per sockperf and per iperf3 run. Default 2. */
  seconds: number;
  /** Interleaved rounds. Default 2. */
  rounds: number;
}

/** Where the tools are mounted inside. */
export const TOOLS_PATH = '/hull-contrast-net';
const IPERF_BASE = 5201;
const SOCKPERF_PORT = 11111;

export { parseLdd } from './tools.js';

/** Pure: sockperf ping-pong output (--full-rtt) -> round trip median and p99, microseconds. */
export function parseSockperf(text: string): { medianUs: number; p99Us: number; observations: number } {
  const pct = (p: string) => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')} =\\s*([\\d.]+)`).exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const obs = Number(/Total (\d+) observations/.exec(text)?.[1] ?? NaN);
  const medianUs = pct('50.000');
  const p99Us = pct('99.000');
  if (!Number.isFinite(medianUs) || !Number.isFinite(p99Us)) throw new Error(`sockperf printed no percentiles: ${lastLine(text) || 'no output'}`);
  return { medianUs, p99Us, observations: obs };
}

/** Pure: iperf3 -J output -> megabits per second received. */
export function parseIperf(json: string): number {
  let v: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try {
    v = JSON.parse(json);
  } catch {
    throw new Error(`iperf3 printed no JSON: ${lastLine(json) || 'no output'}`);
  }
  if (v.error) throw new Error(`iperf3: ${v.error}`);
  const bps = v.end?.sum_received?.bits_per_second;
  if (!(typeof bps === 'number' && bps > 0)) throw new Error('iperf3 reported no received throughput');
  return bps / 1e6;
}

/** Pure: how a tool is run inside: through the copied loader with the copied libraries. */
export function toolCommand(tool: 'iperf3' | 'sockperf', loader: string): string {
  return shippedCommand(TOOLS_PATH, loader, tool);
}

/** Pure: the server script: one one-off iperf3 server per (path, round) port, then sockperf. */
export function serverScript(loader: string, ports: number[]): string {
  const ip = toolCommand('iperf3', loader);
  const sp = toolCommand('sockperf', loader);
  return [...ports.map((p) => `${ip} -s -1 -p ${p} >/dev/null 2>&1 &`), `exec ${sp} server --tcp -i 0.0.0.0 -p ${SOCKPERF_PORT} >/dev/null 2>&1`].join('\n');
}

/** Pure: the client script run inside a second instance against `ip`. */
export function clientScript(loader: string, ip: string, port: number, seconds: number): string {
  return [
    'echo "==sockperf"',
    `${toolCommand('sockperf', loader)} ping-pong --tcp --full-rtt -i ${ip} -p ${SOCKPERF_PORT} -t ${seconds} 2>&1`,
    'echo "==iperf3"',
    `${toolCommand('iperf3', loader)} -c ${ip} -p ${port} -t ${seconds} -J 2>&1`,
  ].join('\n');
}

/** A free TCP port on 127.0.0.1 (asked of the kernel; free when this returns). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Acc {
  rtt: Array<{ medianUs: number; p99Us: number }>;
  mbit: number[];
  errors: string[];
}

const HOW_RTT = 'sockperf ping-pong --tcp --full-rtt (one message in flight; the medians of the runs\' own median and p99)';
const HOW_TPUT = 'iperf3 -c (one TCP stream, received bits per second; median of the runs)';

function figure(pathName: string, a: Acc | undefined, how: string): NetFigure {
  const rtt = a?.rtt ?? [];
  return {
    path: pathName,
    rttMedianUs: rtt.length ? median(rtt.map((r) => r.medianUs)) : null,
    rttP99Us: rtt.length ? median(rtt.map((r) => r.p99Us)) : null,
    mbitPerSec: a?.mbit.length ? median(a.mbit) : null,
    samplesMbit: a?.mbit ?? [],
    error: a?.errors[0],
    how,
  };
}

/**
 * Run sockperf and iperf3 from the host against `ip`; a server that is still starting (VM boot)
 * refuses connections: the first sockperf run waits for it, up to `readyMs`.
 */
async function hostClient(ip: string, sockPort: number, iperfPort: number, o: NetworkOptions, acc: Acc, readyMs: number, signal?: AbortSignal): Promise<void> {
  const until = Date.now() + readyMs;
  for (;;) {
    checkAbort(signal);
    const s = await timedRun('sockperf', ['ping-pong', '--tcp', '--full-rtt', '-i', ip, '-p', String(sockPort), '-t', String(o.seconds)], { timeoutMs: (o.seconds + 60) * 1000 });
    try {
      acc.rtt.push(parseSockperf(s.stdout + s.stderr));
      break;
    } catch (e) {
      if (/refused|Connection reset|connect/i.test(s.stdout + s.stderr) && Date.now() < until) {
        await pause(250, signal);
        continue;
      }
      acc.errors.push((e as Error).message);
      break;
    }
  }
  checkAbort(signal);
  const r = await timedRun('iperf3', ['-c', ip, '-p', String(iperfPort), '-t', String(o.seconds), '-J'], { timeoutMs: (o.seconds + 60) * 1000 });
  try {
    acc.mbit.push(parseIperf(r.stdout));
  } catch (e) {
    acc.errors.push((e as Error).message);
  }
}

export async function networkScenario(drivers: Driver[], root: string, o: NetworkOptions, accelOf: (wall: string) => Accel, progress: (l: string) => void, signal?: AbortSignal): Promise<NetworkResult> {
  const notes: string[] = [];
  const rows: NetworkResult['rows'] = [];
  const hull = drivers.filter((d) => d.kind === 'hull' && d.serve && d.probe);
  fs.mkdirSync(layout(root).tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(layout(root).tmp, 'contrast-net-'));
  const started: Array<{ d: Driver; inst: IdleInstance }> = [];
  const hostProcs: Array<{ kill: () => void; done: Promise<unknown> }> = [];
  try {
    const { loader } = await shipTools(dir, ['iperf3', 'sockperf']);
    // ports per round: [bridge, published, instance-to-instance, instance-to-host (iperf3 -R)]
    const ports = Array.from({ length: o.rounds }, (_, r) => [0, 1, 2, 3].map((k) => IPERF_BASE + r * 4 + k));

    // ---- the bare host's loopback: the same tools, no wall
    const hostAcc: Acc = { rtt: [], mbit: [], errors: [] };
    const sp = spawnServer('sockperf', ['server', '--tcp', '-i', '127.0.0.1', '-p', String(await freePort())]);
    hostProcs.push(sp);
    const hostIperfPort = await freePort();
    const ipf = spawnServer('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(hostIperfPort)]);
    hostProcs.push(ipf);

    // ---- one server instance per wall, on the bridge, with published ports
    const servers = new Map<string, { ip: string; sockHost: number; iperfHost: number[] }>();
    for (const d of hull) {
      checkAbort(signal);
      const sockHost = await freePort();
      const iperfHost: number[] = [];
      for (let r = 0; r < o.rounds; r++) iperfHost.push(await freePort());
      const publish = [`127.0.0.1:${sockHost}:${SOCKPERF_PORT}`, ...iperfHost.map((h, r) => `127.0.0.1:${h}:${ports[r]![1]}`)];
      const s = await d.serve!(serverScript(loader, ports.flat()), { volumes: [[dir, TOOLS_PATH]], publish });
      if (s.instance) started.push({ d, inst: s.instance });
      if (!s.ip) {
        rows.push({ wall: d.name, accel: accelOf(d.name), figures: [figure('host -> instance (bridge)', { rtt: [], mbit: [], errors: [s.error ?? 'could not start the server instance'] }, HOW_RTT)] });
        continue;
      }
      servers.set(d.name, { ip: s.ip, sockHost, iperfHost });
      progress(`network ${d.name}: server instance at ${s.ip} (published on 127.0.0.1:${sockHost} and ${iperfHost.join(', ')})`);
    }
    const acc = new Map<string, Acc>();
    const get = (k: string) => acc.get(k) ?? (acc.set(k, { rtt: [], mbit: [], errors: [] }), acc.get(k)!);
    for (let r = 0; r < o.rounds; r++) {
      checkAbort(signal);
      await hostClient('127.0.0.1', Number(sp.port), hostIperfPort, o, hostAcc, 10_000, signal);
      for (const d of hull) {
        const s = servers.get(d.name);
        if (!s) continue;
        await hostClient(s.ip, SOCKPERF_PORT, ports[r]![0]!, o, get(`${d.name}|bridge`), 120_000, signal);
        await hostClient('127.0.0.1', s.sockHost, s.iperfHost[r]!, o, get(`${d.name}|published`), 30_000, signal);
        // the other direction over the bridge: the instance sends, the host receives (iperf3 -R)
        checkAbort(signal);
        const rev = await timedRun('iperf3', ['-c', s.ip, '-p', String(ports[r]![3]!), '-t', String(o.seconds), '-R', '-J'], { timeoutMs: (o.seconds + 60) * 1000 });
        try {
          get(`${d.name}|reverse`).mbit.push(parseIperf(rev.stdout));
        } catch (e) {
          get(`${d.name}|reverse`).errors.push((e as Error).message);
        }
        checkAbort(signal);
        const c = await d.probe!(clientScript(loader, s.ip, ports[r]![2]!, o.seconds), { volumes: [[dir, TOOLS_PATH]], network: 'bridge', timeoutMs: (o.seconds * 2 + 180) * 1000 });
        const a = get(`${d.name}|peer`);
        const out = c.stdout;
        const [, sockOut = '', iperfOut = ''] = out.split(/^==sockperf$|^==iperf3$/m);
        try {
          if (!c.ok && !out) throw new Error(c.error ?? 'the client instance failed');
          a.rtt.push(parseSockperf(sockOut));
        } catch (e) {
          a.errors.push((e as Error).message);
        }
        try {
          a.mbit.push(parseIperf(iperfOut.trim()));
        } catch (e) {
          a.errors.push((e as Error).message);
        }
        const fmt = (k: string) => {
          const x = get(`${d.name}|${k}`);
          return `${k} rtt ${x.rtt.at(-1)?.medianUs.toFixed(0) ?? '-'} us, ${x.mbit.at(-1)?.toFixed(0) ?? '-'} Mbit/s`;
        };
        progress(`network ${r + 1}/${o.rounds} ${d.name}: ${['bridge', 'published', 'peer', 'reverse'].map(fmt).join('; ')}`);
      }
    }
    rows.unshift({ wall: 'host', accel: 'native', figures: [figure('host loopback (127.0.0.1)', hostAcc, `${HOW_RTT}; ${HOW_TPUT}`)] });
    for (const d of hull) {
      if (!servers.has(d.name)) continue;
      rows.push({
        wall: d.name,
        accel: accelOf(d.name),
        figures: [
          figure('host -> instance (bridge)', acc.get(`${d.name}|bridge`), `${HOW_RTT}; ${HOW_TPUT}; from the host to the instance's address on the default bridge`),
          figure('host -> published port', acc.get(`${d.name}|published`), `${HOW_RTT}; ${HOW_TPUT}; from the host to 127.0.0.1:PORT published with -p (DNAT onto the bridge)`),
          figure('instance -> instance (bridge)', acc.get(`${d.name}|peer`), `${HOW_RTT}; ${HOW_TPUT}; run inside a second instance of the same wall on the default bridge`),
          figure('instance -> host (bridge)', acc.get(`${d.name}|reverse`), `${HOW_TPUT}, reversed (-R): the instance sends, the host receives, over the default bridge; no round trip of its own (sockperf's ping-pong above is the same both ways)`),
        ],
      });
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    notes.push(`network not measured: ${(e as Error).message}`);
  } finally {
    for (const p of hostProcs) p.kill();
    await Promise.all(hostProcs.map((p) => p.done));
    for (const s of started) await s.d.remove([s.inst]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return {
    rows,
    notes,
    how: `${o.rounds} rounds interleaved over the walls, ${o.seconds} s per sockperf and per iperf3 run; the same Debian sockperf and iperf3 binaries on both ends (inside through their own loader and libraries, mounted from the host)`,
  };
}

/** A host server (sockperf / iperf3) on 127.0.0.1, killed by the scenario's `finally`. */
function spawnServer(tool: string, args: string[]): { kill: () => void; done: Promise<unknown>; port: string } {
  const ac = new AbortController();
  const done = timedRun(tool, args, { timeoutMs: 3_600_000, signal: ac.signal });
  const port = args[args.indexOf('-p') + 1]!;
  return { kill: () => ac.abort(), done, port };
}
