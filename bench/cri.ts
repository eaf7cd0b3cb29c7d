/**
 * bench/cri.sh's driver: what the kubelet waits for when it starts a pod, through a real
 * containerd's CRI plugin, hull-vm and runc side by side in one run (interleaved, run by run):
 * the time from RunPodSandbox to the first container's first output line in its CRI log (pod
 * sandbox, network, create, start; what `kubectl run` waits for), then the host memory one
 * idle pod costs (PSS from /proc of every process the pod adds: for hull-vm the shim, QEMU and
 * virtiofsd; for runc the shim and the pause container), which is what a RuntimeClass's
 * overhead.podFixed must cover.
 *   node dist/bench/cri.js [RUNS]      (default 5)
 * Prints a table and a JSON line (medians in ms and MiB).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_IMAGE, importImages, startContainerd } from '../test/helpers/containerd.js';
import { criClient, type Msg } from '../test/helpers/cri.js';

const RUNS = Number(process.argv[2] ?? 5);
const HANDLERS = ['hull-vm', 'runc'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Processes whose command line mentions `needle` (the test containerd's directory). */
function pidsMentioning(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push({ pid: Number(p), cmd });
    } catch {
      // gone
    }
  }
  return out;
}

/** Descendants of pid (inclusive), from /proc/<pid>/task/<pid>/children. */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const c of fs.readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.push(Number(c));
    } catch {
      // gone
    }
  }
  return out;
}

async function main(): Promise<void> {
  const c = await startContainerd('hull-bench-cri-');
  const cri = criClient(c.address);
  const times: Record<string, number[]> = Object.fromEntries(HANDLERS.map((h) => [h, []]));
  const mem: Record<string, number> = {};
  const breakdown: Record<string, Record<string, number>> = {};
  try {
    importImages(c, 'k8s.io');
    let n = 0;
    const pod = async (handler: string, command: string[], wait: RegExp): Promise<{ sb: string; ms: number }> => {
      const name = `b${n++}`;
      const logDir = path.join(c.dir, 'pods', name);
      fs.mkdirSync(logDir, { recursive: true });
      const config: Msg = { metadata: { name, uid: name, namespace: 'bench', attempt: 0 }, hostname: name, log_directory: logDir, linux: { resources: { memory_limit_in_bytes: 128 << 20, cpu_period: 100000, cpu_quota: 100000 } } };
      const t0 = process.hrtime.bigint();
      const sb = (await cri.runtime('RunPodSandbox', { config, runtime_handler: handler })).pod_sandbox_id as string;
      const ctr = (await cri.runtime('CreateContainer', {
        pod_sandbox_id: sb, sandbox_config: config,
        config: { metadata: { name: 'app', attempt: 0 }, image: { image: BUSYBOX_IMAGE }, command, log_path: 'app.log', linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } } },
      })).container_id as string;
      await cri.runtime('StartContainer', { container_id: ctr });
      const log = path.join(logDir, 'app.log');
      for (;;) {
        if (fs.existsSync(log) && wait.test(fs.readFileSync(log, 'utf8'))) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      return { sb, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
    };
    const remove = async (sb: string) => {
      await cri.runtime('StopPodSandbox', { pod_sandbox_id: sb });
      await cri.runtime('RemovePodSandbox', { pod_sandbox_id: sb });
    };
    // one warm-up each (first boot of a guest kernel, image unpack), then interleaved runs
    for (const h of HANDLERS) await remove((await pod(h, ['echo', 'ready'], / stdout F ready$/m)).sb);
    for (let i = 0; i < RUNS; i++) {
      for (const h of HANDLERS) {
        const r = await pod(h, ['echo', 'ready'], / stdout F ready$/m);
        times[h]!.push(r.ms);
        await remove(r.sb);
      }
    }
    // memory of one idle pod: what it adds on the host
    for (const h of HANDLERS) {
      const before = new Set(pidsMentioning(c.dir).map((p) => p.pid));
      const r = await pod(h, ['sh', '-c', 'echo ready; exec sleep 100000'], / stdout F ready$/m);
      await new Promise((res) => setTimeout(res, 3000)); // let the guest settle
      const shims = pidsMentioning(c.dir).filter((p) => !before.has(p.pid) && /shim/.test(p.cmd));
      const pids = new Set(shims.flatMap((s) => tree(s.pid)));
      mem[h] = [...pids].reduce((a, p) => a + pssKiB(p), 0) / 1024;
      const parts = new Map<string, number>();
      for (const p of pids) {
        let name = '?';
        try {
          name = path.basename(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').find((a, i) => i > 0 && !a.startsWith('-') && /shim|qemu|virtiofsd|pause|sleep/.test(a)) ?? fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim());
        } catch {
          // gone
        }
        parts.set(name, (parts.get(name) ?? 0) + pssKiB(p) / 1024);
      }
      breakdown[h] = Object.fromEntries([...parts].map(([k, v]) => [k, Number(v.toFixed(1))]));
      await remove(r.sb);
    }
  } finally {
    cri.close();
    await c.stop();
  }
  const med = Object.fromEntries(HANDLERS.map((h) => [h, median(times[h]!)]));
  console.log(`RunPodSandbox -> first output line, median of ${RUNS} (ms), and host memory of one idle pod (PSS, MiB); load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (const h of HANDLERS) console.log(`  ${h.padEnd(8)} ${med[h]!.toFixed(0).padStart(6)} ms  (${times[h]!.map((x) => x.toFixed(0)).join(' ')})   ${mem[h]!.toFixed(1)} MiB`);
  for (const h of HANDLERS) console.log(`  ${h} memory by process: ${JSON.stringify(breakdown[h])}`);
  console.log(`  hull-vm / runc: ${(med['hull-vm']! / med.runc!).toFixed(1)}x the time, +${(mem['hull-vm']! - mem.runc!).toFixed(1)} MiB per pod`);
  console.log(JSON.stringify({ runs: RUNS, medianMs: med, idlePodPssMiB: mem, idlePodPssByProcess: breakdown, load: os.loadavg() }));
}

void main().catch((e) => {
  console.error(`bench/cri: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
