/**
 * The factory for walls: the engine asks for an Isolation by name and never sees the classes.
 * Each wall's module loads only when that wall is used (the VM wall is not paid for by
 * `hull run --rm busybox echo hello`).
 */
import { HullError } from '../errors.js';
import type { Isolation, IsolationOptions, Wall } from './types.js';

export type { Isolation, IsolationOptions, Wall } from './types.js';

export const WALLS: readonly Wall[] = ['container', 'vm'];

/**
 * @param wall 'container' (OCI runtime) or 'vm' (QEMU microVM)
 * @param root the hull state root
 */
export async function createIsolation(wall: Wall, root: string, opts: IsolationOptions = {}): Promise<Isolation> {
  if (wall === 'container') {
    const m = await import('./container/index.js');
    return m.createContainerIsolation(root, opts);
  }
  if (wall === 'vm') {
    let m: { createVmIsolation: (root: string, opts?: IsolationOptions) => Isolation };
    try {
      // A computed specifier: the VM wall is built in parallel and may not exist yet.
      const spec = './vm/index.js';
      m = (await import(spec)) as typeof m;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
        throw new HullError('UNAVAILABLE', 'the VM wall (--isolation vm) is not available in this build', { cause: e });
      }
      throw e;
    }
    return m.createVmIsolation(root, opts);
  }
  throw new HullError('INVALID_ARGUMENT', `unknown isolation "${String(wall)}": choose container or vm`);
}
