/**
 * What a container changed and what can be made of it: `docker diff` (A/C/D entries from the
 * writable layer), `docker commit` (that layer as a new image layer, with --change and the
 * config docker records), `docker export` (the container's whole filesystem as a tar) and
 * `docker history`. All through the layer-diff code `hull build` uses (snapshots/diff.ts,
 * images/commit.ts): one reading of an upper dir for every path.
 *
 * A VM's writable layer lives in guest memory: its wall hands over a host copy its guest sent
 * (runtime/vm/layer.ts, unpacked by the hardened unpacker), so both walls take the same path.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { applyChange } from '../images/change.js';
import { commitDerived, putLayer } from '../images/commit.js';
import type { ImageRecord, ImageStore } from '../images/store.js';
import type { HistoryEntry, ImageConfig, ImageRunConfig } from '../oci/types.js';
import { HullError } from '../errors.js';
import { scanUpper, writableLayerTar, type DiffEntry, layerTar } from '../snapshots/diff.js';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from '../snapshots/unpack-paths.js';
import type { WritableLayer } from '../runtime/types.js';
import type { Engine } from './engine.js';

/** docker's change kinds: 0 modified, 1 added, 2 deleted. */
export type ChangeKind = 0 | 1 | 2;
export interface Change {
  Path: string;
  Kind: ChangeKind;
}

/** What a container's changes are read from (Engine.layerOf). */
export interface ContainerLayer {
  id: string;
  name: string;
  layer: WritableLayer;
  /** The image's unpacked layer directories, bottom first. */
  lowers: string[];
  image: ImageRecord;
  /** The container's config as inspect shows it (what commit records). */
  config: ImageRunConfig;
  /** The command it runs, for the history's created_by. */
  args: string[];
  /** The layer is a point-in-time copy (a running VM's, taken paused when asked): no pause around its use. */
  snapshot: boolean;
  /** Removes what was made for this caller (a running VM's copy); call it once done. */
  release(): void;
}

function inLowers(lowers: string[], rel: string): boolean {
  for (let i = lowers.length - 1; i >= 0; i--) {
    const st = fs.lstatSync(path.join(lowers[i]!, rel), { throwIfNoEntry: false });
    if (st) return !(st.isCharacterDevice() && st.rdev === 0); // a whiteout in a lower layer: gone there
  }
  return false;
}

/**
 * The A/C/D list of a layer's entries (scanUpper's, so the runtime's own mountpoints are left
 * out as docker leaves them out): a whiteout deletes its name, an entry the image has is
 * changed, any other is added. Sorted by path, as docker prints them.
 */
export function changesOf(entries: DiffEntry[], exists: (rel: string) => boolean): Change[] {
  const out: Change[] = [];
  for (const e of entries) {
    const base = path.posix.basename(e.name);
    const dir = path.posix.dirname(e.name);
    if (base === OPAQUE_WHITEOUT) continue;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      out.push({ Path: `/${dir === '.' ? '' : `${dir}/`}${base.slice(WHITEOUT_PREFIX.length)}`, Kind: 2 });
      continue;
    }
    out.push({ Path: `/${e.name}`, Kind: exists(e.name) ? 0 : 1 });
  }
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

function upperOf(c: ContainerLayer): string {
  if (c.layer.kind !== 'upper') throw new HullError('FAILED_PRECONDITION', `container ${c.name}: its writable layer is not on the host`);
  return c.layer.dir;
}

/** docker diff. */
export function containerChanges(c: ContainerLayer): Change[] {
  const lowers = c.lowers;
  return changesOf(scanUpper(upperOf(c), { runtimePaths: true, lowers, what: `the writable layer of ${c.name}` }), (rel) => inLowers(lowers, rel));
}

export interface CommitOptions {
  /** REPOSITORY[:TAG] to tag the new image with. */
  reference?: string;
  /** Dockerfile instructions applied to the config (--change). */
  changes?: string[];
  author?: string;
  comment?: string;
  /** Config fields the client sent (POST /commit's body), over the container's own. */
  config?: Partial<ImageRunConfig>;
}

/** The new image's config (pure): the container's, the client's fields, the changes, a history entry. */
export function commitConfig(base: ImageConfig, c: Pick<ContainerLayer, 'config' | 'args'>, o: CommitOptions, now: string): Omit<ImageConfig, 'rootfs'> {
  let run: ImageRunConfig = { ...(base.config ?? {}), ...c.config, ...(o.config ?? {}) };
  for (const line of o.changes ?? []) run = applyChange(run, line);
  const h: HistoryEntry = { created: now, created_by: c.args.join(' '), ...(o.author ? { author: o.author } : {}), ...(o.comment ? { comment: o.comment } : {}) };
  const { rootfs: _r, ...rest } = base;
  return { ...rest, created: now, ...(o.author ? { author: o.author } : {}), config: run, history: [...(base.history ?? []), h] };
}

/**
 * Run `fn` with the container paused when it runs and `pause` is set (docker commit's default:
 * the layer is read while nothing writes to it); unpaused again afterwards, whatever happened.
 * A snapshot layer (a running VM's copy, taken with its processes stopped) needs no pause.
 */
export async function whilePaused<T>(engine: Pick<Engine, 'inspect' | 'pause' | 'unpause'>, l: Pick<ContainerLayer, 'id' | 'snapshot'>, pause: boolean, fn: () => Promise<T>): Promise<T> {
  if (l.snapshot) return fn();
  const ref = l.id;
  const st = (await engine.inspect(ref)).State;
  const paused = pause && st.Running && !st.Paused;
  if (paused) await engine.pause(ref);
  try {
    return await fn();
  } finally {
    if (paused) await engine.unpause(ref).catch(() => undefined);
  }
}

/** docker commit: the writable layer as a new layer on the container's image. */
export async function commitContainer(store: ImageStore, c: ContainerLayer, o: CommitOptions, tmp: string): Promise<ImageRecord> {
  const config = commitConfig(c.image.config, c, o, new Date().toISOString());
  const what = `the writable layer of ${c.name}`;
  const { stream, done } = await writableLayerTar(c.layer, { runtimePaths: true, lowers: c.lowers, tmp, what });
  try {
    const added = await putLayer(store, stream, what);
    return await commitDerived(store, { baseLayers: c.image.layers, added: [added], config, tags: o.reference ? [o.reference] : [], action: 'commit' });
  } finally {
    done();
  }
}

/**
 * docker export: the container's filesystem (image layers and writable layer, merged by a
 * read-only overlay mount in a private mount namespace that dies with the copy) copied into a
 * temp dir under `tmp`, then written as one tar by the layer writer (the runtime's
 * mountpoints left out). `done()` removes the copy; call it once the stream is consumed.
 */
export async function exportContainer(c: ContainerLayer, tmp: string): Promise<{ stream: Readable; done: () => void }> {
  const upper = upperOf(c);
  fs.mkdirSync(tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(tmp, 'export-'));
  const out = path.join(dir, 'root');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(out);
  fs.mkdirSync(mnt);
  const done = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const script = 'set -e; out=$1; mnt=$2; shift 2; lower=$(printf "%s:" "$@"); mount --make-rprivate / 2>/dev/null || true; mount -t overlay -o "ro,lowerdir=${lower%:}" hull-export "$mnt"; cp -a "$mnt/." "$out/"';
    await new Promise<void>((resolve, reject) => {
      const p = spawn('unshare', ['-m', 'sh', '-c', script, 'hull-export', out, mnt, upper, ...[...c.lowers].reverse()], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 4000)));
      p.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run unshare: ${e.message}`)));
      p.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('INTERNAL', `export of ${c.name}: merging its layers failed (exit ${code}): ${err.trim()}`))));
    });
    return { stream: layerTar(scanUpper(out, { runtimePaths: true, what: `the filesystem of ${c.name}` }), `the filesystem of ${c.name}`), done };
  } catch (e) {
    done();
    throw e;
  }
}

/** One row of docker history (GET /images/{name}/history), newest first. */
export interface HistoryRow {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** docker history: the config's history entries, each non-empty one with its layer's size. */
export async function imageHistory(store: ImageStore, img: ImageRecord): Promise<HistoryRow[]> {
  const hist = img.config.history?.length ? img.config.history : img.layers.map((): HistoryEntry => ({}));
  const rows: HistoryRow[] = [];
  let li = 0;
  for (const h of hist) {
    let size = 0;
    if (!h.empty_layer && li < img.layers.length) size = await store.ensureLayer(img.layers[li++]!, `layer ${li} of ${img.id}`);
    rows.push({ Id: '<missing>', Created: h.created ? Math.floor(Date.parse(h.created) / 1000) || 0 : 0, CreatedBy: h.created_by ?? '', Tags: null, Size: size, Comment: h.comment ?? '' });
  }
  rows.reverse();
  if (rows[0]) {
    rows[0].Id = img.id;
    rows[0].Tags = img.tags.length ? img.tags : null;
  }
  return rows;
}
