/**
 * Putting a contrast together: the drivers for the requested walls and the peers installed,
 * and writing the reports. Used by the CLI (src/cli/contrast.ts) and the library.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';
import type { Driver } from './driver.js';
import { hullDriver } from './driver-hull.js';
import { exportImage, ociDriver, podmanDriver, removePeerImage, type PeerImage } from './driver-peers.js';
import { findExecutable } from './hostfacts.js';
import { lastLine, runHull } from './spawn.js';
import { resolveVmAccel, vmWallAccel, type MachineInfo } from './machine.js';
import { renderHtml } from './report-html.js';
import { runContrast, type ContrastOptions } from './runner.js';
import { saveLastContrast } from './store.js';
import type { ContrastReport } from './types.js';
import type { PEERS, WALLS } from './units.js';
import { vmWallName, type VmAccelRequest } from './walls.js';

export interface ContrastRequest extends ContrastOptions {
  root: string;
  walls: Array<(typeof WALLS)[number]>;
  /** undefined: every peer that is installed. */
  peers: Array<(typeof PEERS)[number]> | undefined;
  /** The VM wall's accelerators (--vm-accel): one VM wall, or one per accelerator side by side. Default ['auto']. */
  vmAccel?: VmAccelRequest[];
  machine: MachineInfo;
  progress: (line: string) => void;
  signal?: AbortSignal;
}

/** Run a whole contrast: drivers, runner, and the stored copy for `hull advise`. */
/** Make sure `image` is in the root: pull it (as `hull run` would) when it is missing. */
export async function ensureImage(root: string, image: string, progress: (l: string) => void): Promise<void> {
  const have = await runHull(root, ['image', 'inspect', image]);
  if (have.code === 0) return;
  progress(`${image} is not in ${root}: pulling it`);
  const pull = await runHull(root, ['pull', '-q', image], { timeoutMs: 1_800_000 });
  if (pull.code !== 0) throw new HullError('NOT_FOUND', `image ${image} is not in ${root} and could not be pulled: ${lastLine(pull.stderr) || `exit ${pull.code}`}`);
}

export async function contrast(req: ContrastRequest): Promise<ContrastReport> {
  await ensureImage(req.root, req.image, req.progress);
  const tag = `hc${Date.now().toString(36)}${process.pid.toString(36)}`;
  const skipped: Array<{ name: string; reason: string }> = [];
  const drivers = await hullDrivers(req, tag, skipped);
  // Peers are reference rows of start-up and memory only.
  const wanted = req.only.includes('startup') || req.only.includes('memory') ? (req.peers ?? ['podman', 'crun', 'runc']) : [];
  let img: PeerImage | undefined;
  // The bare-host references (cpu, disk) run the image's own binaries from its extracted root.
  const hostRef = req.only.includes('cpu') || req.only.includes('disk');
  try {
    if (hostRef && !wanted.length) {
      try {
        img = await exportImage(req.root, req.image);
      } catch (e) {
        req.progress(`host reference rows left out: ${(e as Error).message}`);
      }
    }
    if (wanted.length) {
      const installed = wanted.filter((p) => findExecutable(p));
      for (const p of wanted) if (!installed.includes(p)) skipped.push({ name: p, reason: 'not installed' });
      if (installed.length || hostRef) {
        req.progress(`preparing reference rows: ${installed.join(', ')} (hull save ${req.image})`);
        try {
          img = await exportImage(req.root, req.image);
          const hybrid = req.machine.cgroup === 'hybrid';
          for (const p of installed) {
            const d = p === 'podman' ? podmanDriver(img, tag, hybrid) : ociDriver(p, img, tag, hybrid);
            if (d) drivers.push(d);
          }
        } catch (e) {
          for (const p of installed) skipped.push({ name: p, reason: (e as Error).message });
        }
      }
    }
    if (!findExecutable('runsc')) skipped.push({ name: 'runsc', reason: 'gVisor (runsc) is not installed' });
    const rep = await runContrast({ options: req, drivers, skipped, progress: req.progress, signal: req.signal, machine: req.machine, hostRootfs: img?.rootfs, root: req.root });
    // The VM wall may have decided its accelerator (probe boot) during the run.
    const acc = vmWallAccel();
    if (acc) rep.machine.kvm = { ...rep.machine.kvm, ...acc };
    saveLastContrast(req.root, rep);
    return rep;
  } finally {
    if (img) removePeerImage(img);
  }
}

/**
 * One driver per wall; the VM wall once per accelerator asked for. KVM asked for where it is
 * unusable (no /dev/kvm, or a /dev/kvm that fails the VM wall's probe boot, e.g. kvm_pvm) is
 * left out with the reason, so every VM figure of the report is TCG and says so.
 */
async function hullDrivers(req: ContrastRequest, tag: string, skipped: Array<{ name: string; reason: string }>): Promise<Driver[]> {
  const accels = req.vmAccel?.length ? req.vmAccel : ['auto' as const];
  const verdict = req.walls.includes('vm') ? await resolveVmAccel() : undefined;
  if (verdict && 'accel' in verdict) req.machine.kvm = { ...req.machine.kvm, usable: verdict.accel === 'kvm', reason: verdict.reason };
  const out: Driver[] = [];
  for (const wall of req.walls) {
    if (wall !== 'vm') {
      out.push(hullDriver({ root: req.root, image: req.image, wall, tag }));
      continue;
    }
    for (const a of accels) {
      const name = vmWallName(a, accels.length > 1);
      if (a === 'kvm' && verdict && 'accel' in verdict && verdict.accel !== 'kvm') {
        const reason = `KVM asked for (--vm-accel kvm) but unusable here: ${verdict.reason}; no KVM figures, the VM figures are TCG`;
        skipped.push({ name, reason });
        req.progress(`${name}: left out: ${reason}`);
        continue;
      }
      const resolved = a === 'auto' ? (verdict && 'accel' in verdict ? verdict.accel : undefined) : a;
      out.push(hullDriver({ root: req.root, image: req.image, wall: 'vm', tag, accel: a, name, resolvedAccel: resolved }));
    }
  }
  return out;
}

/** Write a file atomically (temp + rename in the same directory). */
export function writeReportFile(file: string, text: string): void {
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new HullError('INVALID_ARGUMENT', `cannot write ${file}: directory ${dir} does not exist`);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new HullError('INVALID_ARGUMENT', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

export function reportJson(rep: ContrastReport): string {
  return `${JSON.stringify(rep, null, 2)}\n`;
}

export { renderHtml };
