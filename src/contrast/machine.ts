/**
 * A description of the machine a contrast ran on: CPU, cores, memory, kernel, cgroup mode,
 * whether KVM is usable, and the versions of the parts involved. Read from /proc, /sys and the
 * tools' own --version output.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { version as hullVersion } from '../version.js';
import { chooseAccel, knownAccel } from '../runtime/vm/accel.js';
import { guestAssets, qemuBinary } from '../runtime/vm/assets.js';

export interface KvmFacts {
  /** /dev/kvm exists. */
  present: boolean;
  /** Loaded KVM modules (kvm_intel, kvm_amd, kvm_pvm, ...). */
  modules: string[];
  /** Whether hull would use KVM for VMs (else TCG, QEMU's software emulation). */
  usable: boolean;
  reason: string;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memTotalBytes: number;
  kernel: string;
  os: string;
  cgroup: 'v1' | 'v2' | 'hybrid' | 'none';
  kvm: KvmFacts;
  /** 1-minute load average when the description was taken (other work on the host skews figures). */
  loadAvg1: number;
  /** Tool -> first line of its version output; absent tools are left out. */
  versions: Record<string, string>;
}

/** Pure: the KVM verdict from what is present. Only kvm_intel / kvm_amd run stock guests. */
export function kvmVerdict(present: boolean, modules: string[], probe?: { usable: boolean; reason: string }): KvmFacts {
  if (probe) return { present, modules, ...probe };
  if (!present) return { present, modules, usable: false, reason: 'no /dev/kvm: VMs use TCG (software emulation)' };
  const hw = modules.filter((m) => m === 'kvm_intel' || m === 'kvm_amd');
  if (hw.length) return { present, modules, usable: true, reason: `/dev/kvm backed by ${hw.join(', ')}` };
  return {
    present,
    modules,
    usable: false,
    reason: `/dev/kvm is backed by ${modules.filter((m) => m !== 'kvm').join(', ') || 'an unknown module'}, not kvm_intel/kvm_amd: VMs use TCG`,
  };
}

/** Pure: cgroup mode from /proc/self/mountinfo text and whether cgroup2 has controllers. */
export function cgroupMode(mountinfo: string, unifiedHasControllers: boolean): MachineInfo['cgroup'] {
  let v1 = false;
  let v2 = false;
  for (const line of mountinfo.split('\n')) {
    const right = line.split(' - ')[1]?.split(' ') ?? [];
    if (right[0] === 'cgroup') v1 = true;
    if (right[0] === 'cgroup2') v2 = true;
  }
  if (v1 && v2 && unifiedHasControllers) return 'hybrid';
  if (v1) return 'v1';
  return v2 ? 'v2' : 'none';
}

function firstLine(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return undefined;
  return (r.stdout || r.stderr).split('\n').find((l) => l.trim())?.trim();
}

/** Probe versions of the tools hull measures with or against (absent ones are skipped). */
export function toolVersions(): Record<string, string> {
  const v: Record<string, string> = { hull: hullVersion(), node: process.version };
  const tools: Array<[string, string, string[]]> = [
    ['crun', 'crun', ['--version']],
    ['runc', 'runc', ['--version']],
    ['runsc', 'runsc', ['--version']],
    ['conmon', 'conmon', ['--version']],
    ['qemu', 'qemu-system-x86_64', ['--version']],
    ['podman', 'podman', ['--version']],
  ];
  for (const [name, cmd, args] of tools) {
    const l = firstLine(cmd, args);
    if (l) v[name] = l;
  }
  return v;
}

/**
 * The VM wall's own accelerator verdict (src/runtime/vm/accel.ts): the host facts decide, or
 * the result of its probe boot, cached per host boot (HULL_ACCEL_CACHE, /run/hull/accel.json).
 * undefined when only a probe boot could tell and none has run yet.
 */
export function vmWallAccel(): { usable: boolean; reason: string } | undefined {
  const c = knownAccel();
  return c ? { usable: c.accel === 'kvm', reason: c.reason } : undefined;
}

/**
 * The accelerator the VM wall's 'auto' picks here, deciding it now when only a probe boot can
 * tell (the wall's own probe: a bounded boot under KVM, cached per host boot). An error when the
 * VM wall cannot run at all (no QEMU, no guest kernel): its warm-up then says why.
 */
export async function resolveVmAccel(): Promise<{ accel: 'kvm' | 'tcg'; reason: string } | { error: string }> {
  try {
    const g = guestAssets();
    return await chooseAccel('auto', qemuBinary(), g.kernel, g.initramfs);
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function loadedKvmModules(): string[] {
  try {
    return fs.readdirSync('/sys/module').filter((m) => /^kvm(_|$)/.test(m)).sort();
  } catch {
    return [];
  }
}

export function describeMachine(kvmProbe: { usable: boolean; reason: string } | undefined = vmWallAccel()): MachineInfo {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const memTotal = Number(/^MemTotal:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  let unifiedCtl = false;
  for (const p of ['/sys/fs/cgroup/unified/cgroup.controllers', '/sys/fs/cgroup/cgroup.controllers']) {
    try {
      if (fs.readFileSync(p, 'utf8').trim()) unifiedCtl = true;
    } catch {
      /* absent */
    }
  }
  let osName = 'linux';
  try {
    osName = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? osName;
  } catch {
    /* absent */
  }
  return {
    cpuModel: model,
    cores: os.cpus().length,
    memTotalBytes: memTotal,
    kernel: os.release(),
    os: osName,
    cgroup: cgroupMode(mountinfo, unifiedCtl),
    kvm: kvmVerdict(fs.existsSync('/dev/kvm'), loadedKvmModules(), kvmProbe),
    loadAvg1: Math.round(os.loadavg()[0]! * 100) / 100,
    versions: toolVersions(),
  };
}

/** Bytes of memory the host has available now (/proc/meminfo MemAvailable). */
export function memAvailableBytes(): number {
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
}
