/**
 * buildQemuArgs: the QEMU command line of one hull VM, as data. Pure; unit-tested.
 *
 * Machine: `-M microvm,acpi=off` (no firmware: the uncompressed vmlinux is entered through its
 * PVH note; no ACPI, no PCI: devices are virtio-mmio, which QEMU announces by appending
 * `virtio_mmio.device=...` to the kernel command line, so hull never puts anything after `--`).
 * The legacy PIT/PIC/RTC stay on: under TCG the guest needs them while calibrating.
 * Devices: the image disk (virtio-blk, read-only), one virtio-serial bus with hull's ports, and
 * a 9p device per volume, a virtio-net device per NIC (src/network/vm-tap.ts). No display, no
 * default devices, `-sandbox on`.
 */
import { qemuNicArgs, type QemuNic } from '../../network/vm-tap.js';
import { shq } from '../../util/shell.js';
import { joinCommand, type VmCgroup } from './cgroup.js';

/** Where a port's host end goes. */
export type Chardev =
  | { kind: 'file'; path: string; append?: boolean }
  /** An inherited, already-connected socket (fd number in QEMU). */
  | { kind: 'fd'; fd: number }
  /** A unix socket QEMU listens on (path relative to QEMU's working directory or absolute). */
  | { kind: 'listen'; path: string }
  | { kind: 'null' };

export interface QemuOptions {
  /** Uncompressed guest kernel (ELF vmlinux with a PVH note). */
  kernel: string;
  /** The initramfs: base archive + the per-run spec. */
  initrd: string;
  /** The image's erofs disk, attached read-only as /dev/vda (none: a pod VM, whose roots come over virtio-fs). */
  disk?: string;
  /** Guest RAM, MiB (default 128). */
  memoryMiB?: number;
  /** vCPUs (default 1). */
  cpus?: number;
  accel: 'kvm' | 'tcg';
  /** Host TSC rate, kHz: lets the guest skip timer calibration (tsc_early_khz). */
  tscKhz?: number;
  /** TCG translation cache, MiB (default 32; QEMU's own default is 1 GiB of address space). */
  tbSizeMiB?: number;
  /** `layer`: where the guest's writable layer tar goes (build steps). */
  ports: { status: Chardev; stdout: Chardev; stderr: Chardev; ctl: Chardev; main?: Chardev; layer?: Chardev; run?: Chardev };
  /**
   * Template boots and their restores (runtime/vm/snapshot.ts): every port exists (an absent one
   * on a null chardev, hull.run last), so the device set is the same whatever the run uses.
   */
  allPorts?: boolean;
  /** Guest RAM in a file (a template): shared (the template boot writes it) or private (a clone, copy-on-write). Overrides ramBackend. */
  ramFile?: { path: string; share: boolean };
  /** `-incoming defer`: the machine waits for QMP migrate-incoming (a restore). */
  incoming?: boolean;
  /**
   * The root disk as named block nodes (file `disk0` under raw `root`) instead of `-drive`:
   * templates and their restores, so that a warm pool's guest can be handed its image later
   * (QMP blockdev-add + blockdev-reopen of `root` onto the new file node; runtime/vm/pool.ts).
   */
  diskNodes?: boolean;
  /** `-S`: the vCPUs stay stopped until QMP `cont` (a warm pool's guest, paused until it is claimed). */
  paused?: boolean;
  /** Host directories shared over 9p; tag names the device in the guest. */
  shares?: { tag: string; hostPath: string; readOnly: boolean }[];
  /** Send the guest's kernel log to this file through a UART (debugging; slower boot). */
  consoleLog?: string;
  /** QEMU seccomp sandbox (default true). */
  sandbox?: boolean;
  /**
   * Where guest RAM lives (default 'anon'). 'anon': QEMU's anonymous memory, which QEMU asks to
   * back with transparent huge pages, so every 2 MiB the guest touches becomes resident.
   * 'memfd': a memfd (shmem, 4 KiB pages where the host's shmem THP setting is "never", the
   * default), so only the pages the guest touched are resident: ~6 MiB less per idle VM.
   */
  ramBackend?: 'anon' | 'memfd';
  /** NICs: attached taps QEMU inherits (src/network/vm-tap.ts). None: no network device at all. */
  nics?: QemuNic[];
  /** A unix socket QEMU serves QMP on (pause/unpause of a detached VM: stop/cont). None: no monitor. */
  qmp?: string;
  /** An inherited, connected socket QEMU also serves QMP on (a restore's monitor: nothing to wait for). */
  qmpFd?: number;
  /** Extra `-global` settings (templates: see runtime/vm/snapshot.ts). */
  globals?: string[];
}

/** The guest kernel command line. Never contains `--`: QEMU appends to it. */
export function kernelCmdline(o: Pick<QemuOptions, 'tscKhz' | 'consoleLog' | 'accel'>): string {
  const a = ['panic=-1', 'reboot=t'];
  if (o.tscKhz && o.tscKhz > 0) a.push(`tsc_early_khz=${Math.round(o.tscKhz)}`);
  // tsc=reliable: under TCG the jiffies watchdog misjudges the TSC on a loaded host and would
  // switch the guest to the jiffies clocksource (coarse time)
  // no_timer_check: the IO-APIC timer self-test can fail when a loaded host starves the vCPU
  a.push(o.consoleLog ? 'console=ttyS0' : 'quiet', 'noapictimer', 'no_timer_check', 'tsc=reliable', 'cryptomgr.notests', 'random.trust_cpu=on');
  // noreplace-smp (TCG): a 1-vCPU guest would otherwise rewrite every `lock` prefix in its text
  // at boot, one text_poke (page-table switch, TLB flush, translated-code invalidation) each:
  // ~50 ms under TCG; the kept prefixes cost next to nothing
  if (o.accel === 'tcg') a.push('noreplace-smp');
  return a.join(' ');
}

function chardevArg(id: string, c: Chardev): string {
  const esc = (p: string) => p.replace(/,/g, ',,');
  switch (c.kind) {
    case 'file': return `file,id=${id},path=${esc(c.path)}${c.append ? ',append=on' : ''}`;
    case 'fd': return `socket,id=${id},fd=${c.fd}`;
    case 'listen': return `socket,id=${id},path=${esc(c.path)},server=on,wait=off`;
    case 'null': return `null,id=${id}`;
  }
}

/** The guest CPU under TCG (see buildQemuArgs). */
export const TCG_CPU = 'max,erms=off,fsrm=off';

export function buildQemuArgs(o: QemuOptions): string[] {
  const mem = o.memoryMiB ?? 128;
  const cpus = o.cpus ?? 1;
  if (!Number.isInteger(mem) || mem < 32) throw new Error(`memoryMiB must be an integer >= 32, got ${mem}`);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8) throw new Error(`cpus must be an integer in 1..8, got ${cpus}`);
  const esc = (p: string) => p.replace(/,/g, ',,');
  const memfd = o.ramBackend === 'memfd' && !o.ramFile;
  const machine = ['microvm', 'acpi=off', 'pit=on', 'pic=on', 'rtc=on', ...(o.consoleLog ? [] : ['isa-serial=off']), ...(memfd || o.ramFile ? ['memory-backend=ram'] : [])].join(',');
  const a: string[] = [
    '-M', machine,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-m', String(mem), '-smp', String(cpus),
  ];
  if (memfd) a.push('-object', `memory-backend-memfd,id=ram,size=${mem}M`);
  if (o.ramFile) a.push('-object', `memory-backend-file,id=ram,size=${mem}M,mem-path=${esc(o.ramFile.path)},share=${o.ramFile.share ? 'on' : 'off'}`);
  if (o.accel === 'kvm') a.push('-accel', 'kvm', '-cpu', 'host');
  // TCG: every CPU feature QEMU emulates, minus ERMS/FSRM ("fast" rep movsb/stosb): with them
  // the guest kernel and libc copy and clear memory one byte per rep iteration, which TCG runs
  // as one loop trip each (~80 ms of a boot); without them they use 8-byte strings or loops
  else a.push('-accel', `tcg,tb-size=${o.tbSizeMiB ?? 32}`, '-cpu', TCG_CPU);
  if (o.sandbox !== false) a.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  a.push('-kernel', o.kernel, '-initrd', o.initrd, '-append', kernelCmdline(o));
  a.push('-global', 'virtio-mmio.force-legacy=false');
  for (const g of o.globals ?? []) a.push('-global', g);
  if (o.consoleLog) a.push('-serial', `file:${o.consoleLog}`);
  if (o.disk && o.diskNodes) a.push('-blockdev', `driver=file,node-name=disk0,filename=${esc(o.disk)},read-only=on`, '-blockdev', 'driver=raw,node-name=root,file=disk0,read-only=on', '-device', 'virtio-blk-device,drive=root');
  else if (o.disk) a.push('-drive', `if=none,id=root,file=${esc(o.disk)},format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=root');
  const ports: [string, Chardev | undefined][] = [
    ['hull.status', o.ports.status], ['hull.stdout', o.ports.stdout], ['hull.stderr', o.ports.stderr],
    ['hull.ctl', o.ports.ctl], ['hull.main', o.ports.main], ['hull.layer', o.ports.layer],
    ...(o.allPorts ? [['hull.run', o.ports.run] as [string, Chardev | undefined]] : []),
  ];
  if (o.allPorts) for (const p of ports) p[1] ??= { kind: 'null' };
  a.push('-device', 'virtio-serial-device,max_ports=8');
  ports.forEach(([name, c], i) => {
    if (!c) return;
    a.push('-chardev', chardevArg(`p${i}`, c), '-device', `virtserialport,chardev=p${i},name=${name}`);
  });
  a.push(...qemuNicArgs(o.nics ?? []));
  if (o.incoming) a.push('-incoming', 'defer');
  if (o.paused) a.push('-S');
  if (o.qmp) a.push('-qmp', `unix:${o.qmp.replace(/,/g, ',,')},server=on,wait=off`);
  if (o.qmpFd !== undefined) a.push('-chardev', `socket,id=mon1,fd=${o.qmpFd}`, '-mon', 'chardev=mon1,mode=control');
  (o.shares ?? []).forEach((s, i) => {
    if (!/^[A-Za-z0-9_]{1,31}$/.test(s.tag)) throw new Error(`bad 9p tag "${s.tag}"`);
    a.push('-fsdev', `local,id=fs${i},path=${esc(s.hostPath)},security_model=none${s.readOnly ? ',readonly=on' : ''}`,
      '-device', `virtio-9p-device,fsdev=fs${i},mount_tag=${s.tag}`);
  });
  return a;
}

/**
 * Pure: the sh script that starts QEMU (its words are the script's "$@": setpriv and QEMU's
 * argv). Only QEMU joins the cgroup (an inner sh joins, then execs it); hull-vmmux (`mux`: its
 * argv prefix) starts beside it in the cgroup (it dies with QEMU), connects to QEMU's ctl.sock
 * and serves exec.sock (names relative to the vm directory). With `monitor` the outer shell stays,
 * outside the cgroup so that releasing it never touches the shell: it records QEMU's pid, waits
 * for it, records its exit status, then runs `then` (shell text).
 */
export function qemuLaunchScript(o: { cgroup?: VmCgroup; mux?: string[]; monitor?: { pidFile: string; rcFile: string; then?: string } }): string {
  const jc = o.cgroup ? joinCommand(o.cgroup) : undefined;
  const muxCmd = o.mux ? `${o.mux.map(shq).join(' ')} ctl.sock exec.sock </dev/null >/dev/null & ` : '';
  const join = `${jc ? `echo ${jc.word} > ${shq(jc.file)} || exit 125; ` : ''}${muxCmd}`;
  if (!o.monitor) return `${join}exec "$@"`;
  const m = o.monitor;
  return `sh -c ${shq(`${join}exec "$@"`)} hull-vm "$@" & echo $! > ${shq(m.pidFile)}; wait $!; echo $? > ${shq(m.rcFile)}${m.then ? `; ${m.then}` : ''}`;
}
