/**
 * A pod VM's network: the namespace CNI prepared for the pod (the CRI plugin's netns, its veth
 * with the pod IP and routes) is read as it is, and the VM joins it through hull's tap mirror
 * (src/network/vm-tap.ts): a tap next to each veth, tc mirred both ways, the guest NIC with the
 * veth's MAC and, in the guest, the veth's address and routes. CNI never learns a VM is there.
 */
import { spawn } from 'node:child_process';
import { HullError } from '../errors.js';
import { tapName, type VmNic } from '../network/vm-tap.js';

/** An interface of the pod namespace as the guest is to get it. */
export interface PodNic extends VmNic {
  /** a.b.c.d/prefix, the pod IP when CNI gave one. */
  address?: string;
}

export interface PodNetwork {
  nics: PodNic[];
  /** Routes of the namespace: destination (a.b.c.d/prefix, 0.0.0.0/0 = default) and gateway. */
  routes: { destination: string; gateway: string }[];
}

interface IpAddr {
  ifname: string;
  link_type?: string;
  address?: string;
  mtu?: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

interface IpRoute {
  dst: string;
  gateway?: string;
}

/** Pure: the NICs and routes of a namespace from `ip -j addr` and `ip -j -4 route` output. */
export function podNetworkFromIp(addrJson: string, routeJson: string): PodNetwork {
  let addrs: IpAddr[];
  let routes: IpRoute[];
  try {
    addrs = JSON.parse(addrJson) as IpAddr[];
    routes = JSON.parse(routeJson) as IpRoute[];
  } catch (e) {
    throw new HullError('INTERNAL', `reading the pod network namespace: ip printed no JSON (${(e as Error).message})`);
  }
  const nics: PodNic[] = [];
  for (const a of addrs) {
    if (a.link_type !== 'ether' || !a.address || a.ifname.startsWith('tap')) continue;
    const v4 = a.addr_info?.find((i) => i.family === 'inet');
    nics.push({ ifname: a.ifname, tap: tapName(nics.length), mtu: a.mtu ?? 1500, mac: a.address.toLowerCase(), address: v4 ? `${v4.local}/${v4.prefixlen}` : undefined });
  }
  const out = routes.filter((r) => r.gateway).map((r) => ({ destination: r.dst === 'default' ? '0.0.0.0/0' : r.dst, gateway: r.gateway! }));
  return { nics, routes: out };
}

function inNetns(netns: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('nsenter', [`--net=${netns}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run nsenter: ${e.message}`, { hint: 'apt-get install util-linux iproute2' })));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new HullError('INTERNAL', `${args.join(' ')} in ${netns}: ${err.trim() || `exit ${code}`}`))));
  });
}

/** Reads the pod namespace's interfaces and routes. */
export async function readPodNetwork(netns: string): Promise<PodNetwork> {
  const [a, r] = await Promise.all([inNetns(netns, ['ip', '-j', 'addr', 'show']), inNetns(netns, ['ip', '-j', '-4', 'route', 'show'])]);
  return podNetworkFromIp(a, r);
}
