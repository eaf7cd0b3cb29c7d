/**
 * Host devices in a container: `--device HOST[:CONTAINER[:PERMS]]` (parsed here, pure), the host
 * device it names (stat), and for --privileged every device under the host's /dev (docker's
 * HostDevices walk). The config builder turns each into a linux.devices node and a device cgroup
 * rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../../errors.js';

/** A --device as asked: paths and the cgroup permissions (a non-empty subset of r, w, m). */
export interface DeviceRequest {
  hostPath: string;
  containerPath: string;
  permissions: string;
}

/** A host device node, resolved: what runtime-spec linux.devices and the device cgroup need. */
export interface HostDevice {
  /** Path inside the container. */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** Permission bits of the node (st_mode & 0o777). */
  fileMode: number;
  uid: number;
  gid: number;
  /** Device cgroup access: r, w, m. */
  access: string;
}

const isMode = (s: string) => /^[rwm]{1,3}$/.test(s) && new Set(s).size === s.length;

/** docker's parse of `--device`: HOST, HOST:CONTAINER, HOST:PERMS, HOST:CONTAINER:PERMS. Pure. */
export function parseDevice(flag: string): DeviceRequest {
  const parts = flag.split(':');
  const bad = (why: string) => invalid(`invalid --device ${JSON.stringify(flag)}: ${why}`);
  if (parts.length > 3 || parts.some((p) => p === '')) throw bad('expected HOST[:CONTAINER[:PERMS]]');
  const [host, second, third] = parts as [string, string?, string?];
  let containerPath = host;
  let permissions = 'rwm';
  if (third !== undefined) {
    containerPath = second!;
    permissions = third;
  } else if (second !== undefined) {
    if (isMode(second)) permissions = second;
    else containerPath = second;
  }
  if (!host.startsWith('/')) throw bad(`the host path ${host} is not absolute`);
  if (!containerPath.startsWith('/')) throw bad(`the container path ${containerPath} is not absolute`);
  if (!isMode(permissions)) throw bad(`permissions ${JSON.stringify(permissions)} are not a combination of r, w and m`);
  return { hostPath: host, containerPath: path.posix.normalize(containerPath), permissions };
}

/** Linux's dev_t split (glibc major()/minor()). */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

function fromStat(st: fs.Stats, containerPath: string, access: string): HostDevice | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  return { path: containerPath, type, ...splitDev(st.rdev), fileMode: st.mode & 0o777, uid: st.uid, gid: st.gid, access };
}

/** The host device a --device names (symlinks followed, like docker). INVALID_ARGUMENT when it is not one. */
export function resolveDevice(d: DeviceRequest): HostDevice {
  let st: fs.Stats;
  try {
    st = fs.statSync(d.hostPath);
  } catch (e) {
    throw invalid(`error gathering device information while adding custom device "${d.hostPath}": no such file or directory`, e);
  }
  const dev = fromStat(st, d.containerPath, d.permissions);
  if (!dev) throw invalid(`--device ${d.hostPath}: not a device node (a character or block device is needed)`);
  return dev;
}

/** Directories of /dev docker's walk leaves out: the container has its own of each. */
const SKIP = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** Every device node under the host's /dev (not symlinks, not /dev/console), for --privileged. */
export function hostDevices(dir = '/dev'): HostDevice[] {
  const out: HostDevice[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      return; // a directory that went away or is not readable: docker's walk skips it too
    }
    for (const n of names.sort()) {
      const p = path.join(d, n);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (d === dir && SKIP.has(n)) continue;
        walk(p);
      } else if (p !== path.join(dir, 'console')) {
        const dev = fromStat(st, p, 'rwm');
        if (dev) out.push(dev);
      }
    }
  };
  walk(dir);
  return out;
}
