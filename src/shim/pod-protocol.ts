/**
 * The host side of the guest protocol's pod mode (guest/PROTOCOL.md, "Pod mode"; guest/pod.h):
 * the spec file of a pod VM, RUN and EXEC payloads, and the replies. Pure. Frames, process
 * records and the EXIT payload are the VM wall's (src/runtime/vm/protocol.ts).
 */
import { HullError } from '../errors.js';
import { encodeProcessRecords, PROTO_VERSION, rec, type GuestProcessSpec } from '../runtime/vm/protocol.js';

export const R_POD = {
  READONLY: 8,
  TMPFS: 9,
  HOSTNAME: 5,
  CLOCK: 13,
  POD: 48,
  ROOT: 49,
  BIND: 50,
  CONTAINER: 51,
  PIDNS: 52,
} as const;

export const TP = {
  RUN: 0x30,
  PIDS: 0x31,
  REMOVE: 0x32,
  STARTED: 0x38,
  PIDLIST: 0x39,
  REMOVED: 0x3a,
  OOM: 0x3b,
} as const;

/** The virtio-fs tag the guest mounts the pod's share from. */
export const POD_SHARE_TAG = 'hullpod';

/** A container as the guest starts it. Paths of `root` and bind sources are relative to the share. */
export interface GuestContainer {
  process: GuestProcessSpec;
  root: string;
  readOnly?: boolean;
  tmpfs: { destination: string; options: string }[];
  binds: { source: string; destination: string; readOnly: boolean }[];
  /** Join the pid namespace of the container on this channel (a pod that shares its pids). */
  pidnsOf?: number;
}

function noNul(what: string, s: string): string {
  if (s.includes('\0')) throw new HullError('INVALID_ARGUMENT', `${what} contains a NUL byte`);
  return s;
}

/** A path inside the share: relative, no "..". */
function sharePath(what: string, p: string): string {
  if (!p || p.startsWith('/') || p.split('/').includes('..')) throw new HullError('INVALID_ARGUMENT', `${what} ${JSON.stringify(p)} is not a path inside the pod share`);
  return noNul(what, p);
}

/**
 * The guest network records (guest/net.h of the network stack, records 32-47): one per NIC
 * ("name\0mac\0a.b.c.d/prefix\0mtu") and per route ("a.b.c.d/prefix\0gateway").
 */
const R_NET = { NETIF: 32, ROUTE: 33 } as const;

/** The spec file of a pod VM (/hull/spec): no command, pod mode, the pod's hostname, clock and network. */
export function encodePodSpecFile(o: { hostname: string; clockNs?: bigint; network?: { nics: { ifname: string; mac: string; mtu: number; address?: string }[]; routes: { destination: string; gateway: string }[] } }): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32LE(PROTO_VERSION, 0);
  const parts = [Buffer.from('HULLSPEC'), v, rec(R_POD.POD, Buffer.from([1])), rec(R_POD.HOSTNAME, noNul('the hostname', o.hostname))];
  if (o.clockNs !== undefined) {
    const c = Buffer.alloc(8);
    c.writeBigUInt64LE(o.clockNs, 0);
    parts.push(rec(R_POD.CLOCK, c));
  }
  for (const n of o.network?.nics ?? []) if (n.address) parts.push(rec(R_NET.NETIF, `${n.ifname}\0${n.mac}\0${n.address}\0${n.mtu}`));
  for (const r of o.network?.routes ?? []) parts.push(rec(R_NET.ROUTE, `${r.destination}\0${r.gateway}`));
  return Buffer.concat(parts);
}

/** The payload of RUN: the process records, then the container's root and mounts. */
export function encodeRun(c: GuestContainer): Buffer {
  if (c.tmpfs.length > 32 || c.binds.length > 32) throw new HullError('INVALID_ARGUMENT', 'a container in a hull pod takes at most 32 tmpfs and 32 bind mounts');
  const parts = [encodeProcessRecords(c.process), rec(R_POD.ROOT, sharePath('the root', c.root))];
  if (c.readOnly) parts.push(rec(R_POD.READONLY, Buffer.from([1])));
  if (c.pidnsOf) {
    const ch = Buffer.alloc(2);
    ch.writeUInt16LE(c.pidnsOf, 0);
    parts.push(rec(R_POD.PIDNS, ch));
  }
  for (const t of c.tmpfs) parts.push(rec(R_POD.TMPFS, `${noNul('a tmpfs path', t.destination)}\0${noNul('tmpfs options', t.options)}`));
  for (const b of c.binds) {
    if (!b.destination.startsWith('/')) throw new HullError('INVALID_ARGUMENT', `mount destination ${JSON.stringify(b.destination)} is not absolute`);
    parts.push(rec(R_POD.BIND, `${sharePath('a bind source', b.source)}\0${noNul('a mount path', b.destination)}\0${b.readOnly ? 'ro' : 'rw'}`));
  }
  const out = Buffer.concat(parts);
  if (out.length > 65536) throw new HullError('INVALID_ARGUMENT', 'the command, environment and mounts of a container exceed 64 KiB');
  return out;
}

/** The payload of EXEC in pod mode: the process records and the container's channel. */
export function encodePodExec(p: GuestProcessSpec, containerChannel: number): Buffer {
  const ch = Buffer.alloc(2);
  ch.writeUInt16LE(containerChannel, 0);
  const out = Buffer.concat([encodeProcessRecords(p), rec(R_POD.CONTAINER, ch)]);
  if (out.length > 65536) throw new HullError('INVALID_ARGUMENT', 'the command and environment of an exec exceed 64 KiB');
  return out;
}

/** SIGNAL's payload: u32 signal, u8 flags (1 = every process of the container). */
export function encodeSignal(signal: number, all: boolean): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32LE(signal, 0);
  b[4] = all ? 1 : 0;
  return b;
}

export function decodeStarted(payload: Buffer): number {
  if (payload.length !== 4) throw new HullError('INTERNAL', `guest protocol: STARTED of ${payload.length} bytes`);
  return payload.readUInt32LE(0);
}

export function decodePidList(payload: Buffer): number[] {
  if (payload.length % 4 !== 0) throw new HullError('INTERNAL', `guest protocol: PIDLIST of ${payload.length} bytes`);
  const out: number[] = [];
  for (let o = 0; o < payload.length; o += 4) out.push(payload.readUInt32LE(o));
  return out;
}
