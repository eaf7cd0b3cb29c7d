/**
 * docker system df: what images, containers and volumes take on disk under the root. Layers
 * are counted once (LayersSize), an image's SharedSize is what it shares with other images, a
 * container's SizeRw is its writable layer (a stopped VM's as its guest sent it; a running VM's
 * writes live in guest memory: 0), a volume's
 * size is its directory's (hard links once).
 */
import type { ImageRecord, ImageStore } from '../images/store.js';
import type { WritableLayer } from '../runtime/types.js';
import { dirSize, type VolumeRow, type VolumeStore } from '../volumes/store.js';
import type { ContainerSummary } from './inspect.js';

export interface DiskUsage {
  layersSize: number;
  /** Bytes of layers no image with containers uses (what removing unused images frees). */
  imagesReclaimable: number;
  images: { image: ImageRecord; containers: number; sharedSize: number }[];
  containers: { summary: ContainerSummary; sizeRw: number; sizeRootFs: number }[];
  volumes: { row: VolumeRow; size: number; refCount: number }[];
}

export interface DfSources {
  images: ImageStore;
  volumes: VolumeStore;
  containers: ContainerSummary[];
  /** The container's writable layer, when its wall keeps one on the host. */
  writableLayer(id: string): Promise<WritableLayer | undefined>;
}

export async function diskUsage(s: DfSources, only?: Set<string>): Promise<DiskUsage> {
  const want = (t: string) => !only || only.size === 0 || only.has(t);
  const imgs = s.images.list({ all: true });
  type DiffId = ImageRecord['layers'][number]['diffId'];
  const layerUse = new Map<DiffId, number>();
  for (const img of imgs) for (const l of new Set(img.layers.map((x) => x.diffId))) layerUse.set(l, (layerUse.get(l) ?? 0) + 1);
  const layerSize = (d: DiffId) => s.images.t.layer(d)?.size ?? 0;
  const layersSize = [...layerUse.keys()].reduce((a, d) => a + layerSize(d), 0);
  const used = new Map<string, number>();
  for (const c of s.containers) used.set(c.ImageID, (used.get(c.ImageID) ?? 0) + 1);
  const images = want('image')
    ? imgs.map((image) => ({
        image,
        containers: used.get(image.id) ?? 0,
        sharedSize: [...new Set(image.layers.map((l) => l.diffId))].filter((d) => (layerUse.get(d) ?? 0) > 1).reduce((a, d) => a + layerSize(d), 0),
      }))
    : [];
  const containers = [];
  if (want('container')) {
    for (const summary of s.containers) {
      const layer = await s.writableLayer(summary.Id).catch(() => undefined);
      const sizeRw = layer?.kind === 'upper' ? dirSize(layer.dir) : 0;
      const image = imgs.find((i) => i.id === summary.ImageID);
      containers.push({ summary, sizeRw, sizeRootFs: sizeRw + (image?.size ?? 0) });
    }
  }
  const refs = s.volumes.refCounts();
  const volumes = want('volume') ? s.volumes.list().map((row) => ({ row, size: dirSize(s.volumes.dir(row.name)), refCount: refs.get(row.name) ?? 0 })) : [];
  const inUse = new Set(imgs.filter((i) => used.has(i.id)).flatMap((i) => i.layers.map((l) => l.diffId)));
  const imagesReclaimable = [...layerUse.keys()].filter((d) => !inUse.has(d)).reduce((a, d) => a + layerSize(d), 0);
  return { layersSize: want('image') ? layersSize : 0, imagesReclaimable: want('image') ? imagesReclaimable : 0, images, containers, volumes };
}
