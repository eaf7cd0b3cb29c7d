/**
 * Isolation probes: a busybox `sh` script run inside the workload (through the ordinary
 * `hull run --rm IMAGE sh -c SCRIPT` path), and the pure interpretation of what it printed
 * against the host's own view. Every probe is harmless: reads, or actions confined to the
 * instance's own namespaces and /tmp (a tmpfs mount it unmounts again, a device node it
 * removes again); nothing writes to the host, loads code into the kernel or signals anything.
 */
export const PROBE_SCRIPT = [
  "p(){ printf 'P|%s|%s|%s\\n' \"$1\" \"$2\" \"$(printf '%s' \"$3\" | tr '\\n|' '  ' | head -c 4000)\"; }",
  // t NAME CMD...: allowed when CMD succeeds, denied otherwise, with the last line it printed
  't(){ n=$1; shift; if o=$("$@" 2>&1); then p "$n" allowed "$(printf "%s" "$o" | head -n 1)"; else p "$n" denied "$(printf "%s" "$o" | tail -n 1)"; fi; }',
  'p uptime info "$(cut -d " " -f 1 /proc/uptime)"',
  'p kernel info "$(uname -r)"',
  "p pids info \"$(ls /proc | grep -c '^[0-9][0-9]*$')\"",
  'p pid1 info "$(cat /proc/1/comm 2>&1)"',
  'p devices info "$(ls /dev 2>&1 | tr "\\n" " ")"',
  "p capeff info \"$(awk '$1==\"CapEff:\"{print $2}' /proc/self/status)\"",
  "p seccomp info \"$(awk '$1==\"Seccomp:\"{print $2}' /proc/self/status)\"",
  "p nonewprivs info \"$(awk '$1==\"NoNewPrivs:\"{print $2}' /proc/self/status)\"",
  'p uidmap info "$(head -n 1 /proc/self/uid_map 2>&1)"',
  't userns unshare -U true',
  't mount sh -c "mkdir -p /tmp/.hull-probe && mount -t tmpfs hullprobe /tmp/.hull-probe && umount /tmp/.hull-probe; r=\\$?; rmdir /tmp/.hull-probe 2>/dev/null; exit \\$r"',
  't mknod sh -c "mknod /tmp/.hull-probe-null c 1 3 && rm -f /tmp/.hull-probe-null"',
  // dmesg reads the kernel log with syslog(2); its own exit status says whether that was allowed
  't syslog sh -c "dmesg >/tmp/.hull-probe-dmesg 2>&1; r=\\$?; head -n 1 /tmp/.hull-probe-dmesg; rm -f /tmp/.hull-probe-dmesg; exit \\$r"',
  'if [ -e /dev/kmsg ]; then t kmsg sh -c "timeout 2 head -c 80 /dev/kmsg"; else p kmsg absent "/dev/kmsg not present"; fi',
  'if [ -e /proc/kcore ]; then t kcore sh -c "head -c 1 /proc/kcore | wc -c | grep -qx 1"; else p kcore absent "/proc/kcore not present"; fi',
  't rawsocket ping -c 1 -W 1 127.0.0.1',
  't chroot chroot / true',
  // a host-wide sysctl writable? opened for writing (append), nothing written: a sysctl changes only on write(2)
  't sysctlw sh -c ": >>/proc/sys/vm/overcommit_ratio"',
  'p modules_disabled info "$(cat /proc/sys/kernel/modules_disabled 2>&1)"',
  'p unprivileged_bpf_disabled info "$(cat /proc/sys/kernel/unprivileged_bpf_disabled 2>&1)"',
  'p perf_event_paranoid info "$(cat /proc/sys/kernel/perf_event_paranoid 2>&1)"',
  'p done info ok',
].join('\n');

export interface RawProbe {
  name: string;
  status: 'info' | 'allowed' | 'denied' | 'absent';
  detail: string;
}

/** Parse the `P|name|status|detail` lines; anything else is ignored. */
export function parseProbeOutput(text: string): RawProbe[] {
  const out: RawProbe[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^P\|([a-z0-9_]+)\|(info|allowed|denied|absent)\|(.*)$/.exec(line);
    if (m) out.push({ name: m[1]!, status: m[2] as RawProbe['status'], detail: m[3]!.trim() });
  }
  return out;
}

/** Linux capability numbers -> names (capability.h), for decoding CapEff. */
export const CAP_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
];

/** CapEff hex -> capability names. */
export function decodeCaps(hex: string): string[] {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) return [];
  const v = BigInt(`0x${hex}`);
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((v >> BigInt(i)) & 1n) out.push(CAP_NAMES[i] ?? `CAP_${i}`);
  return out;
}

/** What the host itself shows, for comparison. */
export interface HostView {
  kernel: string;
  pids: number;
  devices: string[];
  capsCount: number;
}

/** Host devices that matter for an escape or for snooping, when visible inside. */
const SENSITIVE_DEVICES = ['kvm', 'mem', 'kmem', 'port', 'kmsg', 'sda', 'vda', 'nvme0', 'nvme0n1', 'xvda', 'dm-0', 'loop0', 'fuse', 'net', 'vhost-net', 'vsock', 'dri', 'snd', 'input'];

export interface IsolationRow {
  /** Probe id, e.g. 'kernel'. */
  probe: string;
  /** What it is, in words. */
  label: string;
  /** What the workload saw or got. */
  inside: string;
  /** The host's value, when the probe has one. */
  host: string;
  /** 'contained': the wall stops or hides it; 'exposed': the workload reaches the host's; 'own': it reaches only its own kernel's (VM). */
  verdict: 'contained' | 'exposed' | 'own' | 'unknown';
}

/**
 * Pure: turn raw probe results into table rows. `ownKernel` is whether the workload runs on a
 * kernel of its own (a VM): then what it may do inside touches only that kernel.
 */
export function interpretProbes(raw: RawProbe[], host: HostView): IsolationRow[] {
  const get = (n: string) => raw.find((r) => r.name === n);
  const kernel = get('kernel')?.detail ?? '';
  const ownKernel = kernel !== '' && kernel !== host.kernel;
  const rows: IsolationRow[] = [];
  const tried = (probe: string, label: string) => {
    const r = get(probe);
    if (!r) return rows.push({ probe, label, inside: 'not run', host: '', verdict: 'unknown' });
    // A failure that is not a refusal: the action got past every check and failed later (ping
    // with no route), or the kernel lacks the feature (a minimal guest kernel).
    const refused = /permission|not permitted|operation not permitted|EPERM|EACCES/i.test(r.detail);
    const gotThrough = r.status === 'denied' && !refused && /unreachable|sendto|timed out/i.test(r.detail);
    const unsupported = r.status === 'denied' && !refused && /invalid argument|not implemented|not supported/i.test(r.detail);
    const inside = r.status === 'allowed' ? 'allowed'
      : gotThrough ? `allowed (then: ${r.detail})`
      : unsupported ? `unsupported by the kernel (${r.detail})`
      : r.status === 'absent' ? `absent (${r.detail})` : `denied${r.detail ? ` (${r.detail})` : ''}`;
    const allowed = r.status === 'allowed' || gotThrough;
    const verdict = !allowed ? (unsupported && ownKernel ? 'own' : 'contained') : ownKernel ? 'own' : 'exposed';
    return rows.push({ probe, label, inside, host: '', verdict });
  };
  rows.push({
    probe: 'kernel',
    label: 'kernel version seen',
    inside: kernel || 'unknown',
    host: host.kernel,
    verdict: !kernel ? 'unknown' : ownKernel ? 'own' : 'exposed',
  });
  const pids = Number(get('pids')?.detail ?? NaN);
  rows.push({
    probe: 'pids',
    label: 'processes visible',
    inside: Number.isFinite(pids) ? `${pids} (pid 1: ${get('pid1')?.detail ?? '?'})` : 'unknown',
    host: String(host.pids),
    verdict: !Number.isFinite(pids) ? 'unknown' : pids >= host.pids / 2 && !ownKernel ? 'exposed' : ownKernel ? 'own' : 'contained',
  });
  const devs = (get('devices')?.detail ?? '').split(/\s+/).filter(Boolean);
  const hostSensitive = host.devices.filter((d) => SENSITIVE_DEVICES.includes(d));
  const seenSensitive = devs.filter((d) => hostSensitive.includes(d));
  rows.push({
    probe: 'devices',
    label: 'host devices present in /dev',
    inside: `${devs.length} entries${seenSensitive.length ? `; host's ${seenSensitive.join(', ')}` : ''}`,
    host: `${host.devices.length} entries`,
    verdict: !devs.length ? 'unknown' : ownKernel ? 'own' : seenSensitive.length ? 'exposed' : 'contained',
  });
  const capHex = get('capeff')?.detail ?? '';
  const caps = decodeCaps(capHex);
  rows.push({
    probe: 'caps',
    label: 'effective capabilities',
    inside: capHex ? `${caps.length}: ${caps.join(' ') || 'none'}` : 'unknown',
    host: `${host.capsCount}`,
    verdict: !capHex ? 'unknown' : ownKernel ? 'own' : caps.includes('SYS_ADMIN') || caps.includes('SYS_MODULE') ? 'exposed' : 'contained',
  });
  const sec = get('seccomp')?.detail ?? '';
  rows.push({
    probe: 'seccomp',
    label: 'seccomp filter',
    inside: sec === '2' ? 'filtered (mode 2)' : sec === '1' ? 'strict (mode 1)' : sec === '0' ? 'none' : ownKernel && get('done') ? 'none (no seccomp in the guest kernel)' : 'unknown',
    host: '',
    verdict: sec === '2' || sec === '1' ? 'contained' : sec === '0' || (ownKernel && get('done')) ? (ownKernel ? 'own' : 'exposed') : 'unknown',
  });
  tried('userns', 'create a user namespace (unshare -U)');
  tried('mount', 'mount a filesystem (mount -t tmpfs)');
  tried('mknod', 'create a device node (mknod c 1 3)');
  tried('syslog', 'read the kernel log (dmesg: syslog(2))');
  tried('kmsg', 'read /dev/kmsg');
  tried('kcore', 'read kernel memory (/proc/kcore)');
  tried('rawsocket', 'open a raw socket (ping)');
  tried('chroot', 'chroot(2)');
  tried('sysctlw', 'change a host-wide sysctl (open /proc/sys/vm/overcommit_ratio for writing; nothing written)');
  const map = (get('uidmap')?.detail ?? '').trim().split(/\s+/).map(Number);
  const rootHost = map.length === 3 && map[0] === 0 && map.every(Number.isFinite) ? map[1]! : undefined;
  rows.push({
    probe: 'rootuid',
    label: 'host uid of root inside (/proc/self/uid_map)',
    inside: rootHost === undefined ? 'unknown' : rootHost === 0 ? '0 (root on the host)' : `${rootHost} (unprivileged on the host)`,
    host: '0',
    verdict: rootHost === undefined ? 'unknown' : ownKernel ? 'own' : rootHost === 0 ? 'exposed' : 'contained',
  });
  const sysctl = (probe: string, label: string) => {
    const v = get(probe)?.detail ?? '';
    rows.push({ probe, label, inside: v || 'unknown', host: '', verdict: ownKernel ? 'own' : 'unknown' });
  };
  sysctl('modules_disabled', 'kernel.modules_disabled (module loading; read only)');
  sysctl('unprivileged_bpf_disabled', 'kernel.unprivileged_bpf_disabled (bpf(2); read only)');
  sysctl('perf_event_paranoid', 'kernel.perf_event_paranoid (perf_event_open(2); read only)');
  return rows;
}

/** /proc/uptime the probe saw, milliseconds (for a VM: guest kernel start to the probe). */
export function probeUptimeMs(raw: RawProbe[]): number | undefined {
  const v = Number(raw.find((r) => r.name === 'uptime')?.detail ?? NaN);
  return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
}

/** Whether the probe script ran to its end (its last line was printed). */
export function probesComplete(raw: RawProbe[]): boolean {
  return raw.some((r) => r.name === 'done');
}
