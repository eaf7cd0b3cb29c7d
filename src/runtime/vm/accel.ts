/**
 * Accelerator choice. KVM only when it is known to work: kvm_intel or kvm_amd is loaded, or a
 * bounded probe boot under KVM succeeds (other /dev/kvm providers, e.g. PVM's kvm_pvm, may
 * accept the VM and then fail it). Otherwise TCG. The probe's result is cached per host boot in
 * /run/hull/accel.json (HULL_ACCEL_CACHE overrides the path), so it is paid once.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../../errors.js';
import { buildQemuArgs } from './qemu-args.js';

export type Accel = 'kvm' | 'tcg';

export interface AccelChoice {
  accel: Accel;
  /** Why, in words (shown by inspect / info). */
  reason: string;
}

export interface HostFacts {
  devKvm: boolean;
  /** Loaded kernel modules of interest (kvm_intel, kvm_amd, kvm_pvm, ...). */
  modules: string[];
}

/** Pure: what the host facts alone decide; 'probe' = only a test boot can tell. */
export function accelFromFacts(f: HostFacts): AccelChoice | 'probe' {
  if (!f.devKvm) return { accel: 'tcg', reason: 'no /dev/kvm: QEMU TCG (software emulation)' };
  const hw = f.modules.find((m) => m === 'kvm_intel' || m === 'kvm_amd');
  if (hw) return { accel: 'kvm', reason: `KVM (${hw} loaded)` };
  return 'probe';
}

export function hostFacts(): HostFacts {
  const modules = ['kvm_intel', 'kvm_amd', 'kvm_pvm', 'kvm'].filter((m) => fs.existsSync(`/sys/module/${m}`));
  let devKvm = false;
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    devKvm = true;
  } catch {
    devKvm = false;
  }
  return { devKvm, modules };
}

function cachePath(): string {
  return process.env.HULL_ACCEL_CACHE ?? '/run/hull/accel.json';
}

function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** Boots the guest kernel under KVM with no init (it panics, panic=-1 reboots, QEMU exits). */
function probeKvm(qemu: string, kernel: string, initramfs: string, boundMs: number): Promise<boolean> {
  const args = buildQemuArgs({
    kernel, initrd: initramfs, disk: '/dev/null', accel: 'kvm',
    ports: { status: { kind: 'null' }, stdout: { kind: 'null' }, stderr: { kind: 'null' }, ctl: { kind: 'null' } },
  });
  const i = args.indexOf('-append');
  args[i + 1] = `${args[i + 1]} rdinit=/hull-accel-probe-no-init`;
  return new Promise((resolve) => {
    const c = spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 2000)));
    const t = setTimeout(() => c.kill('SIGKILL'), boundMs);
    c.on('error', () => { clearTimeout(t); resolve(false); });
    c.on('close', (code) => {
      clearTimeout(t);
      resolve(code === 0 && !/KVM internal error|emulation failure/.test(err));
    });
  });
}

/**
 * The accelerator 'auto' would pick, as far as it is known without booting anything: from the
 * host facts, or from this host boot's cached probe result; undefined when only a probe can tell.
 */
export function knownAccel(): AccelChoice | undefined {
  const facts = hostFacts();
  const d = accelFromFacts(facts);
  if (d !== 'probe') return d;
  try {
    const c = JSON.parse(fs.readFileSync(cachePath(), 'utf8')) as { key?: unknown; choice?: AccelChoice };
    if (typeof c.key === 'string' && c.key.startsWith(`${bootId()} `) && (c.choice?.accel === 'kvm' || c.choice?.accel === 'tcg')) return c.choice;
  } catch {
    // no probe has run on this host boot
  }
  return undefined;
}

/**
 * @param requested 'auto' probes as described above; 'kvm' fails when /dev/kvm is unusable;
 *   'tcg' is always honoured.
 */
export async function chooseAccel(requested: 'auto' | 'kvm' | 'tcg', qemu: string, kernel: string, initramfs: string): Promise<AccelChoice> {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'TCG (forced with --vm-accel tcg)' };
  const facts = hostFacts();
  if (requested === 'kvm') {
    if (!facts.devKvm) throw new HullError('UNAVAILABLE', '--vm-accel kvm: /dev/kvm is missing or not accessible', { hint: 'load kvm_intel or kvm_amd, or use --vm-accel tcg' });
    return { accel: 'kvm', reason: 'KVM (forced with --vm-accel kvm)' };
  }
  const d = accelFromFacts(facts);
  if (d !== 'probe') return d;
  const key = `${bootId()} ${qemu} ${kernel} ${facts.modules.join(',')}`;
  try {
    const c = JSON.parse(fs.readFileSync(cachePath(), 'utf8')) as { key: string; choice: AccelChoice };
    if (c.key === key && (c.choice.accel === 'kvm' || c.choice.accel === 'tcg')) return c.choice;
  } catch {
    // no cache yet
  }
  const ok = await probeKvm(qemu, kernel, initramfs, 6000);
  const mods = facts.modules.filter((m) => m !== 'kvm').join(', ') || 'kvm';
  const choice: AccelChoice = ok
    ? { accel: 'kvm', reason: `KVM (${mods}; a probe boot succeeded)` }
    : { accel: 'tcg', reason: `TCG: /dev/kvm (${mods}) failed a probe boot` };
  try {
    fs.mkdirSync(path.dirname(cachePath()), { recursive: true });
    const tmp = `${cachePath()}.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ key, choice }));
    fs.renameSync(tmp, cachePath());
  } catch {
    // cache is an optimisation
  }
  return choice;
}
