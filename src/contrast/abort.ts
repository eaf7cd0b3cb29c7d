/** Interrupting a contrast: every scenario checks the signal between steps and sleeps abortably. */
import { HullError } from '../errors.js';

export function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new HullError('UNAVAILABLE', 'interrupted');
}

/** Wait `ms` milliseconds, or less when `signal` aborts (then throws like checkAbort). */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
  checkAbort(signal);
}
