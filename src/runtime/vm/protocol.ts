/**
 * The host side of hull's guest protocol, version 1 (guest/PROTOCOL.md): spec records, frames,
 * and the status stream. Pure: buffers in, buffers or values out. Everything decoded from the
 * guest is bounded and validated before use.
 */
import { HullError } from '../../errors.js';

export const PROTO_VERSION = 1;
export const FRAME_HEADER = 8;
/** Largest payload either side accepts, bytes. */
export const FRAME_MAX_PAYLOAD = 65536;

export const T = {
  EXEC: 0x10,
  STDIN: 0x11,
  STDIN_EOF: 0x12,
  SIGNAL: 0x13,
  RESIZE: 0x14,
  SHUTDOWN: 0x15,
  /** Send the writable layer now (u8 flags: 1 = freeze every process meanwhile); answered on its channel. */
  LAYER: 0x16,
  /** hull.run, to a restored template: the run's spec records. */
  RESUME: 0x17,
  /** hull.run, to a warm pool's guest: rehearse this run (guest/snapshot.c), then wait on. */
  REHEARSE: 0x18,
  READY: 0x20,
  STDOUT: 0x21,
  STDERR: 0x22,
  EXIT: 0x23,
  ERROR: 0x24,
  /** Status port, after EXIT: the whole writable layer went out on hull.layer. */
  LAYER_SENT: 0x25,
  /** hull.status of a template boot: ready to be saved. */
  TEMPLATE: 0x26,
  /** status: the rehearsal is done (empty payload) or failed (why). */
  REHEARSED: 0x27,
} as const;

const R = {
  ARG: 1, ENV: 2, CWD: 3, USER: 4, HOSTNAME: 5, TTY: 6, STDIN: 7, READONLY: 8, TMPFS: 9, SHARE: 10,
  WINSIZE: 11, MAINPORT: 12, CLOCK: 13, LOGFMT: 14, LAYER: 15, TEMPLATE: 16, RANDOM: 17,
  // 32-47: network (guest/net.c)
  NETIF: 32, ROUTE: 33, HOSTS: 34, RESOLV: 35,
} as const;

/** What the guest agent runs and how (the main process, or an exec'd one). */
export interface GuestProcessSpec {
  args: string[];
  env: string[];
  /** Absolute; default '/'. */
  cwd?: string;
  /** docker -u syntax; '' = root. */
  user?: string;
  tty?: boolean;
  /** Keep stdin open, fed by STDIN frames. */
  stdin?: boolean;
  rows?: number;
  cols?: number;
}

export interface GuestRunSpec extends GuestProcessSpec {
  hostname: string;
  readOnly?: boolean;
  tmpfs?: { destination: string; options: string }[];
  /** 9p shares QEMU exports (tag = the device's mount_tag). */
  shares?: { tag: string; destination: string; readOnly: boolean }[];
  /** The host attaches port hull.main (a foreground run). */
  mainPort?: boolean;
  /** Main output as k8s-file log lines on hull.stdout (detached runs). */
  logFormat?: boolean;
  /**
   * When the guest streams its writable layer as a tar on port hull.layer: 'success' after a
   * zero exit (build steps), 'exit' after any exit (a container that is kept: diff, commit and
   * export of a stopped VM). Absent: never.
   */
  layer?: 'success' | 'exit';
  /** Host wall clock, ns since the epoch, for the guest's clock. */
  clockNs?: bigint;
  /** A template boot (runtime/vm/snapshot.ts): no workload, the run spec comes on hull.run. */
  template?: boolean;
  /** Fresh host bytes (16..512) the guest mixes into its RNG, then reseeds (restored clones). */
  random?: Buffer;
  /** NICs the agent configures (guest/net.c), matched by MAC, else by name. */
  interfaces?: { name: string; mac: string; mtu: number; address: string }[];
  /** The default route's gateway. */
  gateway?: string;
  /** /etc/hosts and /etc/resolv.conf of the guest (else the agent's defaults). */
  hosts?: string;
  resolvConf?: string;
}

/** One spec record: u16 tag, u32 length, the bytes. */
export function rec(tag: number, data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const h = Buffer.alloc(6);
  h.writeUInt16LE(tag, 0);
  h.writeUInt32LE(b.length, 2);
  return Buffer.concat([h, b]);
}

const flag = (v: boolean | undefined) => Buffer.from([v ? 1 : 0]);

function noNul(what: string, s: string): string {
  if (s.includes('\0')) throw new HullError('INVALID_ARGUMENT', `${what} contains a NUL byte`);
  return s;
}

/** Records of a process spec (the payload of an EXEC frame). */
export function encodeProcessRecords(p: GuestProcessSpec): Buffer {
  if (p.args.length === 0) throw new HullError('INVALID_ARGUMENT', 'no command to run: give one, or use an image with a default command');
  const parts: Buffer[] = [];
  for (const a of p.args) parts.push(rec(R.ARG, noNul('an argument', a)));
  for (const e of p.env) parts.push(rec(R.ENV, noNul('an environment variable', e)));
  if (p.cwd) parts.push(rec(R.CWD, noNul('the working directory', p.cwd)));
  if (p.user) parts.push(rec(R.USER, noNul('the user', p.user)));
  if (p.tty) parts.push(rec(R.TTY, flag(true)));
  if (p.stdin) parts.push(rec(R.STDIN, flag(true)));
  if (p.rows && p.cols) {
    const w = Buffer.alloc(4);
    w.writeUInt16LE(Math.min(p.rows, 65535), 0);
    w.writeUInt16LE(Math.min(p.cols, 65535), 2);
    parts.push(rec(R.WINSIZE, w));
  }
  return Buffer.concat(parts);
}

/** The spec file the guest reads from its initramfs (/hull/spec). */
export function encodeSpecFile(s: GuestRunSpec): Buffer {
  const parts: Buffer[] = [Buffer.from('HULLSPEC'), Buffer.alloc(4)];
  parts[1]!.writeUInt32LE(PROTO_VERSION, 0);
  if (!s.template || s.args.length) parts.push(encodeProcessRecords(s));
  parts.push(rec(R.HOSTNAME, noNul('the hostname', s.hostname)));
  if (s.readOnly) parts.push(rec(R.READONLY, flag(true)));
  if (s.mainPort) parts.push(rec(R.MAINPORT, flag(true)));
  if (s.template) parts.push(rec(R.TEMPLATE, flag(true)));
  if (s.random) {
    if (s.random.length < 16 || s.random.length > 512) throw new HullError('INVALID_ARGUMENT', 'random record: 16..512 bytes');
    parts.push(rec(R.RANDOM, s.random));
  }
  if (s.logFormat) parts.push(rec(R.LOGFMT, flag(true)));
  if (s.layer) parts.push(rec(R.LAYER, Buffer.from([s.layer === 'exit' ? 2 : 1])));
  if (s.clockNs !== undefined) {
    const c = Buffer.alloc(8);
    c.writeBigUInt64LE(s.clockNs, 0);
    parts.push(rec(R.CLOCK, c));
  }
  for (const n of s.interfaces ?? []) parts.push(rec(R.NETIF, `${noNul('an interface', n.name)}\0${n.mac}\0${n.address}\0${n.mtu}`));
  if (s.gateway) parts.push(rec(R.ROUTE, `0.0.0.0/0\0${s.gateway}`));
  if (s.hosts !== undefined) parts.push(rec(R.HOSTS, noNul('/etc/hosts', s.hosts)));
  if (s.resolvConf !== undefined) parts.push(rec(R.RESOLV, noNul('/etc/resolv.conf', s.resolvConf)));
  if ((s.interfaces?.length ?? 0) > 8) throw new HullError('INVALID_ARGUMENT', 'a VM takes at most 8 network interfaces');
  for (const t of s.tmpfs ?? []) parts.push(rec(R.TMPFS, `${noNul('a tmpfs path', t.destination)}\0${noNul('tmpfs options', t.options)}`));
  for (const m of s.shares ?? []) parts.push(rec(R.SHARE, `${m.tag}\0${noNul('a volume path', m.destination)}\0${m.readOnly ? 'ro' : 'rw'}`));
  if ((s.tmpfs?.length ?? 0) > 32 || (s.shares?.length ?? 0) > 32) throw new HullError('INVALID_ARGUMENT', 'a VM takes at most 32 tmpfs mounts and 32 volumes');
  const out = Buffer.concat(parts);
  if (out.length > 1 << 20) throw new HullError('INVALID_ARGUMENT', 'the command, environment and mounts exceed 1 MiB');
  return out;
}

/** The T_RESUME frame a restored clone reads on hull.run: the spec file's records, no header. */
export function encodeResumeFrame(s: GuestRunSpec): Buffer {
  return encodeFrame(T.RESUME, 0, encodeSpecFile(s).subarray(12));
}

/** The T_REHEARSE frame of a warm pool's guest: the spec of a rehearsal run, in the same records. */
export function encodeRehearseFrame(s: GuestRunSpec): Buffer {
  return encodeFrame(T.REHEARSE, 0, encodeSpecFile(s).subarray(12));
}

export function encodeFrame(type: number, channel: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > FRAME_MAX_PAYLOAD) throw new HullError('INVALID_ARGUMENT', `frame payload of ${payload.length} bytes exceeds ${FRAME_MAX_PAYLOAD}`);
  const h = Buffer.alloc(FRAME_HEADER);
  h[0] = PROTO_VERSION;
  h[1] = type;
  h.writeUInt16LE(channel, 2);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** Splits data into frames of at most FRAME_MAX_PAYLOAD bytes each. */
export function encodeData(type: number, channel: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < data.length; o += FRAME_MAX_PAYLOAD) out.push(encodeFrame(type, channel, data.subarray(o, o + FRAME_MAX_PAYLOAD)));
  return out;
}

export interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

/** Incremental decoder: push bytes as they arrive, get whole frames. Throws on a bad header. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Frame[] = [];
    while (this.buf.length >= FRAME_HEADER) {
      const version = this.buf[0];
      const len = this.buf.readUInt32LE(4);
      if (version !== PROTO_VERSION) throw new HullError('INTERNAL', `guest protocol: version ${version}, expected ${PROTO_VERSION}`);
      if (len > FRAME_MAX_PAYLOAD) throw new HullError('INTERNAL', `guest protocol: frame of ${len} bytes exceeds ${FRAME_MAX_PAYLOAD}`);
      if (this.buf.length < FRAME_HEADER + len) break;
      out.push({ type: this.buf[1]!, channel: this.buf.readUInt16LE(2), payload: Buffer.from(this.buf.subarray(FRAME_HEADER, FRAME_HEADER + len)) });
      this.buf = this.buf.subarray(FRAME_HEADER + len);
    }
    return out;
  }

  /** Bytes of an incomplete frame still held. */
  get pending(): number {
    return this.buf.length;
  }
}

export interface ExitFrame {
  code: number;
  /** The guest kernel's OOM killer ended the process. */
  oomKilled: boolean;
  /**
   * The whole writable layer went out: on the status port, a LAYER_SENT frame followed this
   * EXIT (R_LAYER runs); as the answer to a LAYER request, flag 2 of the EXIT itself.
   */
  layerSent?: boolean;
  reason?: string;
}

export function decodeExit(payload: Buffer): ExitFrame {
  if (payload.length < 5) throw new HullError('INTERNAL', 'guest protocol: EXIT frame shorter than 5 bytes');
  const code = payload.readInt32LE(0);
  const reason = payload.length > 5 ? payload.subarray(5).toString('utf8') : undefined;
  return { code, oomKilled: (payload[4]! & 1) === 1, ...((payload[4]! & 2) === 2 ? { layerSent: true } : {}), reason };
}

export interface GuestStatus {
  /** The main process started: its guest pid and the guest kernel release. */
  ready?: { pid: number; release: string };
  /** A template boot is ready to be saved (T_TEMPLATE). */
  template?: boolean;
  /** A warm pool guest's rehearsal ended: '' done, else why it failed (T_REHEARSED). */
  rehearsed?: string;
  exit?: ExitFrame;
  /** ERROR frames the guest wrote on the status port (e.g. why it could not send its layer). */
  errors?: string[];
}

/**
 * The status stream (the hull.status port, written to a file by QEMU). A torn last frame
 * (QEMU killed mid-write) is ignored; a bad header throws.
 */
export function decodeStatus(data: Buffer): GuestStatus {
  const st: GuestStatus = {};
  for (const f of new FrameDecoder().push(data)) {
    if (f.type === T.READY && f.payload.length >= 4) st.ready = { pid: f.payload.readUInt32LE(0), release: f.payload.subarray(4).toString('utf8') };
    else if (f.type === T.EXIT && f.channel === 0) st.exit = decodeExit(f.payload);
    else if (f.type === T.LAYER_SENT && f.channel === 0 && st.exit) st.exit.layerSent = true;
    else if (f.type === T.TEMPLATE) st.template = true;
    else if (f.type === T.REHEARSED) st.rehearsed = f.payload.subarray(0, 1024).toString('utf8');
    else if (f.type === T.ERROR && f.channel === 0) (st.errors ??= []).push(f.payload.subarray(0, 1024).toString('utf8'));
  }
  return st;
}
