/**
 * Kernel-global and on-disk names of one hull root's network objects (pure). Everything the
 * kernel sees is unique per root: a 6-hex tag of the root's path goes into every bridge name and
 * the nftables table, so several roots (test files, engineers) never share or collide.
 */
import crypto from 'node:crypto';
import path from 'node:path';

/** Every hull bridge starts with this (the isolation rules match hull bridges by it). */
export const BRIDGE_PREFIX = 'hull';

/** 6 hex of sha256(root path). */
export function rootTag(root: string): string {
  return crypto.createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 6);
}

/** Bridge of a network: hull + root tag + 5 hex of the network id (15 characters, IFNAMSIZ-1). */
export function bridgeName(root: string, networkId: string): string {
  return `${BRIDGE_PREFIX}${rootTag(root)}${networkId.slice(0, 5)}`;
}

/** The root's nftables table (family ip): NAT, published ports, isolation. */
export function nftTable(root: string): string {
  return `hull_${rootTag(root)}`;
}

export interface NetPaths {
  /** Network namespace files, one per container that has its own: <root>/run/netns/<id>. */
  netnsDir: string;
  /** aardvark-dns config directory (one file per network with names). */
  dnsDir: string;
  /**
   * The lock every change of the root's kernel network state is made under. Outside the root
   * (in /run/hull, HULL_NET_RUN_DIR), so the idle cleanup can still take it after a removed root.
   */
  lock: string;
}

export function netPaths(root: string, env: NodeJS.ProcessEnv = process.env): NetPaths {
  return {
    netnsDir: path.join(root, 'run', 'netns'),
    dnsDir: path.join(root, 'network', 'aardvark-dns'),
    lock: path.join(env.HULL_NET_RUN_DIR ?? '/run/hull', 'locks', `network-${rootTag(root)}`),
  };
}

export function netnsPath(root: string, containerId: string): string {
  return path.join(netPaths(root).netnsDir, containerId);
}

/** What every bridge of this root's name starts with. */
export function bridgePrefixOf(root: string): string {
  return `${BRIDGE_PREFIX}${rootTag(root)}`;
}
