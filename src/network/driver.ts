/**
 * The driver behind the network stack: what wires one interface of a prepared namespace to a
 * network. One small interface, one implementation today (the CNI bridge plugin, cni-bridge.ts).
 * The stack owns everything else (addresses, firewall, DNS, namespaces), so a driver is only the
 * wiring; the walls never see it.
 */

export interface AttachRequest {
  /** Namespace file. */
  netns: string;
  /** Interface inside the namespace (eth0, eth1, ...). */
  ifname: string;
  containerId: string;
  /** Host bridge of the network. */
  bridge: string;
  mtu: number;
  /** The address hull allocated, its prefix length and the network's gateway. */
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  /** Whether the default route goes through this network (the first non-internal one). */
  defaultRoute: boolean;
}

export interface AttachResult {
  /** Host side of the veth pair (what teardown deletes). */
  veth: string;
  /** The interface's MAC as set. */
  mac: string;
}

export interface NetworkDriver {
  readonly name: string;
  /**
   * Wires `ifname` in `netns` to the bridge with the given address; undoes itself on failure.
   * Called with the root's network lock held (the idle cleanup deletes bridges under it).
   */
  attach(r: AttachRequest): Promise<AttachResult>;
  /**
   * Host-side links whose deletion undoes an attach (deleting a veth removes its peer too); the
   * stack deletes them together with the namespace, in one step.
   */
  detachLinks(r: { veth: string | null }): string[];
}
