/** GET /system/df: docker's SystemDataUsageResponse (API 1.45 shape: LayersSize, Images, Containers, Volumes, BuildCache). */
import { volumeView } from '../volumes/store.js';
import { type Ctx, type Handler, sendJson } from './context.js';
import { HttpError } from './errors.js';
import { summary } from './images.js';
import type { Router } from './router.js';

const TYPES = ['container', 'image', 'volume', 'build-cache'];

async function df(c: Ctx): Promise<void> {
  const only = new Set(c.query.all('type'));
  for (const t of only) if (!TYPES.includes(t)) throw new HttpError(400, `invalid type ${JSON.stringify(t)}: ${TYPES.join(', ')}`);
  const u = await c.engine.diskUsage(only);
  const store = c.engine.volumes;
  sendJson(c, 200, {
    LayersSize: u.layersSize,
    Images: u.images.map((i) => ({ ...summary(i.image, c.images.addedAt(i.image.id), i.containers), SharedSize: i.sharedSize })),
    Containers: u.containers.map(({ summary: { PortsText: _t, NetworkMode, ...s }, sizeRw, sizeRootFs }) => ({ ...s, HostConfig: { NetworkMode }, SizeRw: sizeRw, SizeRootFs: sizeRootFs })),
    Volumes: u.volumes.map((v) => volumeView(store, v.row, { size: v.size, refCount: v.refCount })),
    // hull's build cache is intermediate images: their layers are counted under Images
    BuildCache: [],
  });
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/system/df', df);
}
