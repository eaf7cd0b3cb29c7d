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
    const { createVmIsolation } = await import('./vm/index.js');
    return createVmIsolation(root, opts);
  }
  throw new HullError('INVALID_ARGUMENT', `unknown isolation "${String(wall)}": choose container or vm`);
}
