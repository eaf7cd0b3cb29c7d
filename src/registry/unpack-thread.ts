/**
 * The body of one layer-unpacking thread (see unpack-worker.ts): opens the hull root with its
 * own SQLite handle and unpacks each layer it is sent with ImageStore.ensureLayer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HullError } from '../errors.js';
import { ImageStore } from '../images/store.js';
import type { Job, Reply } from './unpack-worker.js';

const port = parentPort;
if (!port) throw new Error('unpack-thread.js runs only as a worker thread');
const store = ImageStore.open((workerData as { root: string }).root);
port.on('message', (job: Job) => {
  store.ensureLayer(job.layer, job.what).then(
    () => port.postMessage({ id: job.id, ok: true } satisfies Reply),
    (e: unknown) => port.postMessage({ id: job.id, ok: false, code: e instanceof HullError ? e.code : undefined, message: e instanceof Error ? e.message : String(e) } satisfies Reply),
  );
});
