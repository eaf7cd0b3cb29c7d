/**
 * Docker's mount syntaxes, parsed into MountSpec (pure): `-v`/`--volume` and HostConfig.Binds
 * (`SRC:DST[:OPTS]`, `DST` alone for an anonymous volume), and `--mount` (`type=volume,...`).
 * A source that is an absolute path is a bind mount; any other source names a volume.
 */
import { invalid } from '../errors.js';
import type { MountSpec } from '../runtime/types.js';
import { validVolumeName } from './store.js';

const PROPAGATION = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];
/** idmap: with --userns=auto, mounted idmapped (host ids seen as the container's, podman's :idmap). */
const BIND_OPTS = ['ro', 'rw', 'z', 'Z', 'idmap', ...PROPAGATION];
const VOLUME_OPTS = ['ro', 'rw', 'z', 'Z', 'nocopy'];

/**
 * `-v` / HostConfig.Binds. `what` names the flag or field in errors; `anonymous` allows `DST`
 * alone (the CLI's -v; the API sends those in Config.Volumes instead).
 */
export function parseVolumeSpec(value: string, what = '-v', o: { anonymous?: boolean } = { anonymous: true }): MountSpec {
  const bad = (why: string) => invalid(`invalid ${what} ${JSON.stringify(value)}: ${why}`);
  const parts = value.split(':');
  if (parts.length > 3 || value === '') throw bad('expected [SOURCE:]DESTINATION[:OPTIONS]');
  if (parts.length === 1) {
    if (!o.anonymous) throw bad('expected SOURCE:DESTINATION[:OPTIONS]');
    const destination = parts[0]!;
    checkDestination(destination, bad);
    return { type: 'volume', destination, readOnly: false };
  }
  // DST:OPTS (anonymous with options) when the second part is not a path
  let src: string | undefined;
  let dst: string;
  let mode: string | undefined;
  if (parts.length === 2 && parts[0]!.startsWith('/') && !parts[1]!.startsWith('/') && /^[a-zA-Z,]+$/.test(parts[1]!)) {
    [dst, mode] = parts as [string, string];
  } else {
    [src, dst, mode] = parts as [string, string, string | undefined];
  }
  checkDestination(dst, bad);
  const opts = (mode ?? '').split(',').filter(Boolean);
  if (src === undefined || !src.startsWith('/')) {
    if (src !== undefined && src !== '' && !validVolumeName(src)) {
      throw bad(`"${src}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; a host directory must be an absolute path`);
    }
    for (const x of opts) if (!VOLUME_OPTS.includes(x)) throw bad(`invalid mode: ${x}`);
    return { type: 'volume', ...(src ? { source: src } : {}), destination: dst, readOnly: opts.includes('ro'), ...(opts.includes('nocopy') ? { noCopy: true } : {}) };
  }
  for (const x of opts) if (!BIND_OPTS.includes(x)) throw bad(`invalid mode: ${x}`);
  return { type: 'bind', source: src, destination: dst, readOnly: opts.includes('ro'), ...(opts.includes('idmap') ? { idmap: true } : {}) };
}

function checkDestination(dst: string, bad: (why: string) => Error): void {
  if (!dst.startsWith('/')) throw bad('the destination (container path) must be absolute');
  if (dst.replace(/\/+$/, '') === '') throw bad('cannot mount over /');
}

const truthy = (v: string | undefined) => v === undefined || v === '' || v === 'true' || v === '1';

/**
 * `--mount type=volume|bind|tmpfs,source=..,target=..[,readonly][,volume-nocopy][,tmpfs-size=..]`
 * (docker's long syntax, CSV fields). `bytes` parses sizes (128m).
 */
export function parseMountFlag(value: string, bytes: (v: string, flag: string) => number): MountSpec {
  const bad = (why: string) => invalid(`invalid argument "${value}" for "--mount" flag: ${why}`);
  const f = new Map<string, string | undefined>();
  for (const field of value.split(',')) {
    if (field === '') continue;
    const i = field.indexOf('=');
    const k = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    f.set(k, i < 0 ? undefined : field.slice(i + 1));
  }
  const type = f.get('type') ?? 'volume';
  const src = f.get('source') ?? f.get('src');
  const dst = f.get('target') ?? f.get('destination') ?? f.get('dst');
  if (!dst) throw bad('target is required');
  checkDestination(dst, bad);
  const ro = (f.has('readonly') && truthy(f.get('readonly'))) || (f.has('ro') && truthy(f.get('ro')));
  const known: Record<string, string[]> = {
    volume: ['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro', 'volume-nocopy', 'consistency'],
    bind: ['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro', 'bind-propagation', 'consistency'],
    tmpfs: ['type', 'target', 'destination', 'dst', 'readonly', 'ro', 'tmpfs-size', 'tmpfs-mode'],
  };
  if (!known[type]) throw bad(`type ${JSON.stringify(type)}: hull mounts volume, bind and tmpfs`);
  for (const k of f.keys()) if (!known[type]!.includes(k)) throw bad(`unexpected key '${k}' for a ${type} mount`);
  if (type === 'bind') {
    if (!src || !src.startsWith('/')) throw bad('a bind mount needs an absolute source path');
    const prop = f.get('bind-propagation');
    if (prop !== undefined && !PROPAGATION.includes(prop)) throw bad(`invalid bind-propagation ${prop}`);
    return { type: 'bind', source: src, destination: dst, readOnly: ro };
  }
  if (type === 'tmpfs') {
    if (src) throw bad('a tmpfs mount takes no source');
    const options: string[] = [];
    const size = f.get('tmpfs-size');
    if (size !== undefined) options.push(`size=${bytes(size, '--mount tmpfs-size')}`);
    const mode = f.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{3,4}$/.test(mode)) throw bad(`invalid tmpfs-mode ${mode} (octal)`);
      options.push(`mode=${mode}`);
    }
    return { type: 'tmpfs', destination: dst, readOnly: ro, options };
  }
  if (src && !validVolumeName(src)) throw bad(`invalid volume name ${JSON.stringify(src)}`);
  return { type: 'volume', ...(src ? { source: src } : {}), destination: dst, readOnly: ro, ...(f.has('volume-nocopy') && truthy(f.get('volume-nocopy')) ? { noCopy: true } : {}) };
}
