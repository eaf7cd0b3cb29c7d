/**
 * Volumes as the engine uses them: a create's mounts planned (image VOLUMEs become anonymous
 * volumes, each volume mount becomes a bind of the volume's directory), the container's uses
 * recorded with its row, the image's content copied into a new empty volume (docker's
 * "populate"), and anonymous volumes removed with their container when asked (`rm -v`, `--rm`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError, invalid, isHullError } from '../errors.js';
import { layout } from '../paths.js';
import { LayeredRoot } from '../runtime/container/rootfs.js';
import { layersViewLines } from '../snapshots/vmdisk.js';
import type { MountSpec } from '../runtime/types.js';
import { newVolumeName, type VolumeStore } from '../volumes/store.js';

/** One volume a container mounts, once planned. */
export interface PlannedUse {
  name: string;
  anonymous: boolean;
  destination: string;
  noCopy: boolean;
}

export interface MountPlan {
  /** What the walls get: binds (volumes resolved to their directories, `volume` set) and tmpfs. */
  mounts: MountSpec[];
  uses: PlannedUse[];
}

const clean = (p: string) => path.posix.normalize(p).replace(/(.)\/+$/, '$1');

/**
 * Pure but for the store's paths: the asked mounts plus an anonymous volume for each image
 * VOLUME no mount covers; a destination mounted twice is refused (docker's "Duplicate mount point").
 */
export function planMounts(asked: MountSpec[], imageVolumes: string[], dirOf: (name: string) => string, newName: () => string = newVolumeName): MountPlan {
  const seen = new Set<string>();
  const all: MountSpec[] = [];
  for (const m of asked) {
    const d = clean(m.destination);
    if (seen.has(d)) throw invalid(`Duplicate mount point: ${d}`);
    seen.add(d);
    all.push({ ...m, destination: d });
  }
  for (const v of imageVolumes) {
    const d = clean(v);
    if (!d.startsWith('/') || seen.has(d)) continue;
    seen.add(d);
    all.push({ type: 'volume', destination: d, readOnly: false });
  }
  const uses: PlannedUse[] = [];
  const mounts = all.map((m): MountSpec => {
    if (m.type !== 'volume') return m;
    const anonymous = m.source === undefined || m.source === '';
    const name = anonymous ? newName() : m.source!;
    uses.push({ name, anonymous, destination: m.destination, noCopy: m.noCopy ?? false });
    return { type: 'bind', source: dirOf(name), destination: m.destination, readOnly: m.readOnly, volume: name };
  });
  return { mounts, uses };
}

/** The shell run in a private mount namespace to copy an image path into a volume: args volume, mnt, rel, lowers (top first). */
export const POPULATE_SCRIPT = ['set -e', 'vol=$1; mnt=$2; rel=$3; shift 3', ...layersViewLines('hull-populate'), 'exec cp -a "$src/$rel/." "$vol/"'].join('\n');

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 4000)));
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run ${cmd}: ${e.message}`, { cause: e })));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('INTERNAL', `copying the image's files into the volume failed (${cmd} exit ${code}): ${err.trim()}`))));
  });
}

export class EngineVolumes {
  constructor(
    readonly store: VolumeStore,
    private readonly root: string,
  ) {}

  plan(asked: MountSpec[], imageVolumes: string[]): MountPlan {
    return planMounts(asked, imageVolumes, (n) => this.store.dir(n));
  }

  /** Record the uses (inside the transaction that inserts the container's row). Returns the names of volumes this call made. */
  attach(containerId: string, uses: PlannedUse[]): string[] {
    const before = new Set(uses.filter((u) => this.store.get(u.name)).map((u) => u.name));
    this.store.attach(containerId, uses);
    return uses.map((u) => u.name).filter((n) => !before.has(n));
  }

  /**
   * After the row committed: every volume's directory exists, and a new empty one holds what
   * the image has at that path (unless nocopy), as docker copies it at create.
   */
  async populate(uses: PlannedUse[], lowerDirs: string[]): Promise<void> {
    const image = new LayeredRoot(lowerDirs);
    for (const u of uses) {
      const dir = this.store.ensureDir(u.name);
      if (u.noCopy || fs.readdirSync(dir).length > 0 || lowerDirs.length === 0) continue;
      const found = image.resolve(u.destination);
      if (!found || !found.st.isDirectory()) continue;
      // found.path has no symlinks left (resolved inside the image): cp -a copies the tree as it is
      const work = fs.mkdtempSync(path.join(layout(this.root).tmp, 'populate-'));
      try {
        await run('unshare', ['-m', 'sh', '-c', POPULATE_SCRIPT, 'hull-populate', dir, work, found.path.replace(/^\/+/, '') || '.', ...[...lowerDirs].reverse()]);
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
    }
  }

  /**
   * --userns=auto: shift the owners of everything in a new volume (the image's files copied in,
   * the directory itself) into the container's range, so its root owns what it owns inside.
   */
  shiftOwners(name: string, range: { uid: number; gid: number; size: number }): void {
    const shift = (p: string) => {
      const st = fs.lstatSync(p);
      if (st.uid < range.size && st.gid < range.size) fs.lchownSync(p, st.uid + range.uid, st.gid + range.gid);
      if (st.isDirectory()) for (const e of fs.readdirSync(p)) shift(path.join(p, e));
    };
    shift(this.store.ensureDir(name));
  }

  /** The container's anonymous volumes (read before its row goes). */
  anonymousOf(containerId: string): string[] {
    return this.store.usedBy(containerId).filter((v) => v.anonymous).map((v) => v.name);
  }

  /** Remove volumes that no container uses any more (anonymous ones of a removed container). */
  removeUnused(names: string[]): void {
    for (const n of names) {
      try {
        this.store.remove(n, { force: true });
      } catch (e) {
        if (!isHullError(e, 'CONFLICT')) throw e; // another container took it into use: kept
      }
    }
  }
}
