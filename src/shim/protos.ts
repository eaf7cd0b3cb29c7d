/**
 * The protobuf messages the shim speaks, loaded once from the .proto subsets in
 * src/shim/proto/ (each names the containerd v1.6.20 file it was checked against) through
 * protobufjs. Decoding gives plain objects: 64-bit integers as numbers, enums as numbers,
 * missing fields at their proto3 defaults.
 */
import path from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../paths.js';

const FILES = ['ttrpc.proto', 'shim.proto', 'events.proto', 'events-service.proto', 'metrics.proto', 'runtimeoptions.proto'];

let root: protobuf.Root | undefined;

/** The directory holding the .proto files (shipped with the package). */
export function protoDir(): string {
  return path.join(packageRoot(), 'src', 'shim', 'proto');
}

function load(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  const dir = protoDir();
  // google/protobuf/*.proto come from protobufjs's own copies; everything else from dir
  r.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.resolve(dir, target));
  r.loadSync(FILES);
  r.resolveAll();
  return (root = r);
}

const types = new Map<string, protobuf.Type>();

export function messageType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    t = load().lookupType(name);
    types.set(name, t);
  }
  return t;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, bytes: Buffer, defaults: true, arrays: true, objects: true };

/** Encodes a plain object (camelCase field names) as the named message. Throws on a bad value. */
export function encode(name: string, value: Record<string, unknown>): Buffer {
  const t = messageType(name);
  const err = t.verify(value);
  if (err) throw new Error(`${name}: ${err}`);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}

/** Decodes bytes as the named message into a plain object (defaults filled in). */
export function decode<T = Record<string, unknown>>(name: string, data: Uint8Array): T {
  const t = messageType(name);
  return t.toObject(t.decode(data), TO_OBJECT) as T;
}

/**
 * Decodes without converting to a plain object: Any fields stay {type_url, value} (toObject
 * would expand an Any whose type it happens to know into that message's fields).
 */
export function decodeRaw<T = Record<string, unknown>>(name: string, data: Uint8Array): T {
  return messageType(name).decode(data) as unknown as T;
}

/** A google.protobuf.Timestamp for a Date (or the zero time). */
export function timestamp(d?: Date): { seconds: number; nanos: number } {
  if (!d) return { seconds: 0, nanos: 0 };
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/**
 * A google.protobuf.Any holding `value` encoded as message `name`, under that bare name (as
 * containerd's typeurl writes it). protobufjs's own Any keeps the snake_case field name type_url.
 */
export function any(name: string, value: Record<string, unknown>): { type_url: string; value: Buffer } {
  return { type_url: name, value: encode(name, value) };
}
