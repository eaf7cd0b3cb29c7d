/**
 * Network isolation on the default bridge, tried for real and harmlessly, per wall: can an
 * instance ARP-spoof a neighbour? A victim instance of the wall sits on the bridge; the host
 * knocks on one of its ports, so the host's neighbour table holds the victim's MAC; a second instance then sends
 * ARP requests to the host claiming the victim's address (Debian's arp-scan, shipped in with its
 * libraries, `--arpspa`). If the host's entry now names the attacker's MAC, the spoof worked:
 * the bridge is one shared layer 2 for every instance of every wall. The entry is deleted
 * afterwards and both instances removed; traffic goes only to the bridge hull made.
 * Raw sockets (NET_RAW) and host sysctls are tried by the isolation probe script (probes.ts).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { layout } from '../paths.js';
import { checkAbort, pause } from './abort.js';
import type { Driver, IdleInstance } from './driver.js';
import type { IsolationRow } from './probes.js';
import { lastLine, timedRun } from './spawn.js';
import { shipTools, shippedCommand } from './tools.js';

export const ARP_TOOLS_PATH = '/hull-contrast-arp';
const LABEL = "ARP-spoof a neighbour on the bridge (claim another instance's address to the host, arp-scan --arpspa)";

/** Pure: `ip -j neigh show` / `ip -j route get` output -> the first entry's field. */
export function ipJsonField(text: string, field: 'lladdr' | 'dev' | 'prefsrc'): string | undefined {
  try {
    const v = JSON.parse(text) as Array<Record<string, unknown>>;
    const x = v[0]?.[field];
    return typeof x === 'string' ? x : undefined;
  } catch {
    return undefined;
  }
}

/** Pure: the attacker's script: its own MAC, then arp-scan claiming `victim` towards `gateway`. */
export function spoofScript(arpScan: string, victim: string, gateway: string): string {
  return [`echo "A|$(cat /sys/class/net/eth0/address)"`, `${arpScan} --interface=eth0 --arpspa=${victim} --retry=2 --numeric --plain --quiet ${gateway} 2>&1`, 'echo "R|$?"'].join('\n');
}

/** Pure: the row from what was seen. */
export function spoofRow(s: { attackerMac?: string; rc?: number; output: string; before?: string; after?: string; error?: string }): IsolationRow {
  const row = (inside: string, verdict: IsolationRow['verdict']): IsolationRow => ({ probe: 'arpspoof', label: LABEL, inside, host: s.before ? `victim's MAC ${s.before}` : '', verdict });
  if (s.error) return row(`not run: ${s.error}`, 'unknown');
  const msg = s.output.split('\n').map((l) => l.trim()).filter((l) => l && !/^A\||^R\|/.test(l) && !/ieee-oui|mac-vendor|WARNING/i.test(l)).pop() ?? '';
  if (s.attackerMac && s.after && s.after.toLowerCase() === s.attackerMac.toLowerCase()) return row(`allowed: the host's entry for the victim's address now names the attacker's MAC ${s.attackerMac}`, 'exposed');
  if (s.rc !== 0) {
    if (/not permitted|permission/i.test(msg)) return row(`denied (${msg.replace(/^\((.*)\)$/, '$1')})`, 'contained');
    // a guest kernel without packet sockets cannot send a forged ARP frame at all
    if (/not supported|Address family/i.test(msg)) return row(`unsupported by the kernel (${msg})`, 'own');
    return row(`denied (${msg || `arp-scan exited with ${s.rc}`})`, 'contained');
  }
  return row(`sent, not taken: the host's entry still names ${s.after ?? 'no MAC'}`, 'contained');
}

/** One TCP connection attempt to `ip` (port 9): the host resolves its MAC on the way; the refusal or the timeout both do. */
function knock(ip: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port: 9, timeout: 1000 });
    const done = () => {
      s.destroy();
      resolve();
    };
    s.once('connect', done).once('error', done).once('timeout', done);
  });
}

/** The ARP-spoof row of every wall with a bridge (serve + probe), walls one after another. */
export async function netIsolation(drivers: Driver[], root: string, progress: (l: string) => void, signal?: AbortSignal): Promise<Map<string, IsolationRow>> {
  const out = new Map<string, IsolationRow>();
  const walls = drivers.filter((d) => d.kind === 'hull' && d.serve && d.probe);
  if (!walls.length) return out;
  fs.mkdirSync(layout(root).tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(layout(root).tmp, 'contrast-arp-'));
  try {
    let arp: string;
    try {
      const { loader } = await shipTools(dir, ['arp-scan']);
      arp = shippedCommand(ARP_TOOLS_PATH, loader, 'arp-scan');
    } catch (e) {
      for (const d of walls) out.set(d.name, spoofRow({ output: '', error: (e as Error).message }));
      return out;
    }
    for (const d of walls) {
      checkAbort(signal);
      let victim: IdleInstance | undefined;
      try {
        const v = await d.serve!('exec sleep 600', { volumes: [], publish: [] });
        victim = v.instance;
        if (!v.ip) throw new Error(v.error ?? 'the victim instance has no address on the bridge');
        const route = await timedRun('ip', ['-j', 'route', 'get', v.ip]);
        const dev = ipJsonField(route.stdout, 'dev');
        const gateway = ipJsonField(route.stdout, 'prefsrc');
        if (!dev || !gateway) throw new Error(`ip route get ${v.ip}: ${lastLine(route.stderr) || 'no device'}`);
        // the host learns the victim's MAC (a VM may still be booting: up to a minute)
        const until = Date.now() + 60_000;
        let before: string | undefined;
        while (!before) {
          checkAbort(signal);
          await knock(v.ip);
          before = ipJsonField((await timedRun('ip', ['-j', 'neigh', 'show', v.ip, 'dev', dev])).stdout, 'lladdr');
          if (!before && Date.now() > until) throw new Error(`the host never learnt ${v.ip}'s MAC`);
        }
        // past the neighbour entry's locktime (1 s), so an override would be taken
        await pause(1500, signal);
        const a = await d.probe!(spoofScript(arp, v.ip, gateway), { volumes: [[dir, `${ARP_TOOLS_PATH}:ro`]], network: 'bridge', timeoutMs: 180_000 });
        const attackerMac = /^A\|([0-9a-f:]{17})$/m.exec(a.stdout)?.[1];
        const rc = Number(/^R\|(\d+)$/m.exec(a.stdout)?.[1] ?? NaN);
        const after = ipJsonField((await timedRun('ip', ['-j', 'neigh', 'show', v.ip, 'dev', dev])).stdout, 'lladdr');
        if (attackerMac && after === attackerMac) await timedRun('ip', ['neigh', 'del', v.ip, 'dev', dev]);
        const row = spoofRow({ attackerMac, rc: Number.isFinite(rc) ? rc : undefined, output: a.stdout || a.error || '', before, after, error: !a.stdout && !a.ok ? a.error : undefined });
        out.set(d.name, row);
        progress(`isolation ${d.name}: ARP spoof ${row.inside}`);
      } catch (e) {
        if (signal?.aborted) throw e;
        out.set(d.name, spoofRow({ output: '', error: (e as Error).message }));
      } finally {
        if (victim) await d.remove([victim]);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
