/**
 * The names of hull's walls in a contrast (pure). The VM wall is `vm` when it runs with one
 * accelerator (auto, the default, or the one --vm-accel names); with `--vm-accel tcg,kvm` it is
 * one wall per accelerator, `vm-tcg` and `vm-kvm`, side by side.
 */
import { invalid } from '../errors.js';
import type { Accel } from './types.js';

export type VmAccelRequest = 'auto' | 'kvm' | 'tcg';

/** '--vm-accel tcg,kvm' -> the accelerators, validated; 'auto' stands alone. */
export function parseVmAccel(value: string): VmAccelRequest[] {
  const list = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  if (!list.length) throw invalid('"--vm-accel" needs one of: auto, kvm, tcg (or a list of kvm,tcg)');
  for (const a of list) if (!['auto', 'kvm', 'tcg'].includes(a)) throw invalid(`invalid argument "${a}" for "--vm-accel" flag: expected auto, kvm or tcg (or tcg,kvm for both side by side)`);
  if (list.length > 1 && list.includes('auto')) throw invalid('invalid argument for "--vm-accel" flag: auto stands alone (it picks one of kvm and tcg); list kvm,tcg to measure both');
  return list as VmAccelRequest[];
}

/** The wall name of the VM wall with accelerator `a`, when `many` accelerators are measured. */
export function vmWallName(a: VmAccelRequest, many: boolean): string {
  return many ? `vm-${a}` : 'vm';
}

/** Whether a wall of the report is a VM wall (vm, vm-tcg, vm-kvm). */
export function isVmWall(name: string): boolean {
  return name === 'vm' || /^vm-(kvm|tcg)$/.test(name);
}

/** The VM wall a single answer (advise, the one-line summaries) speaks for: vm, else vm-kvm, else vm-tcg. */
export function primaryVmWall(names: string[]): string | undefined {
  return ['vm', 'vm-kvm', 'vm-tcg'].find((n) => names.includes(n));
}

/** Pure: a wall's label with its accelerator: 'vm [TCG]', 'vm-kvm [KVM]', 'container'. */
export function accelTag(accel: Accel | undefined): string {
  return accel === 'tcg' ? ' [TCG]' : accel === 'kvm' ? ' [KVM]' : '';
}
