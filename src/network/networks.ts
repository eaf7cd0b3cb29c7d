/**
 * Network objects: the predefined `bridge`, `host` and `none`, user networks (create, rm, prune),
 * and their docker-shaped views (network ls / inspect, the Engine API's /networks). Addresses
 * and subnets are hull's own: subnets claimed machine-wide (subnets.ts), addresses leased from
 * the network's range when a container's network is set up (stack.ts).
 */
import crypto from 'node:crypto';
import { conflict, invalid, precondition } from '../errors.js';
import { nowIso, type DB } from '../state/db.js';
import { canonicalSubnet, hostIn, intToIp, networkOf, parseCidr, contains } from './ipam.js';
import { bridgeName } from './names.js';
import { NetworkTables, type NetworkRow } from './store.js';
import { claimSubnet, releaseSubnet } from './subnets.js';

export const PREDEFINED = ['bridge', 'host', 'none'] as const;

export interface CreateNetworkOptions {
  name: string;
  /** Only 'bridge' (the default). */
  driver?: string;
  /** CIDR; default: a free /24 of hull's pool. */
  subnet?: string;
  /** Default: the subnet's first host address. */
  gateway?: string;
  /** CIDR inside the subnet addresses are leased from. Default: the whole subnet. */
  ipRange?: string;
  /** No route out, no NAT, no published ports. Default false. */
  internal?: boolean;
  labels?: Record<string, string>;
  /** Driver options; `com.docker.network.driver.mtu` sets the MTU (bytes, default 1500). */
  options?: Record<string, string>;
  /** Answer with the existing network of that name instead of CONFLICT (docker's CheckDuplicate false). */
  ifMissing?: boolean;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function newId(t: NetworkTables, root: string): string {
  for (;;) {
    const id = crypto.randomBytes(32).toString('hex');
    if (!t.bridgeTaken(bridgeName(root, id)) && !t.network(id)) return id;
  }
}

export class Networks {
  readonly t: NetworkTables;

  constructor(readonly root: string, db: DB) {
    this.t = new NetworkTables(db);
  }

  private exists = (id: string) => this.t.network(id) !== undefined;

  /** The predefined networks exist in every root; `bridge` gets its subnet on first use. */
  async ensurePredefined(): Promise<void> {
    if (PREDEFINED.every((n) => this.t.networkByName(n))) return;
    for (const [name, driver] of [['host', 'host'], ['none', 'null']] as const) {
      if (!this.t.networkByName(name)) {
        try {
          this.t.insertNetwork(row({ id: newId(this.t, this.root), name, driver, subnet: '', gateway: '', bridge: null }));
        } catch (e) {
          if (!this.t.networkByName(name)) throw e; // another process made it first
        }
      }
    }
    if (!this.t.networkByName('bridge')) await this.createRow({ name: 'bridge' }, false);
  }

  /** docker network create. */
  async create(o: CreateNetworkOptions): Promise<{ row: NetworkRow; existed: boolean }> {
    await this.ensurePredefined();
    if (!NAME.test(o.name)) throw invalid(`invalid network name ${JSON.stringify(o.name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    if ((PREDEFINED as readonly string[]).includes(o.name)) throw precondition(`${o.name} is a pre-defined network and cannot be created`);
    const driver = o.driver ?? 'bridge';
    if (driver !== 'bridge') throw invalid(`network driver ${JSON.stringify(driver)} is not supported: only bridge`);
    const found = this.t.networkByName(o.name);
    if (found) {
      if (o.ifMissing) return { row: found, existed: true };
      throw conflict(`network with name ${o.name} already exists`);
    }
    return { row: await this.createRow(o, true), existed: false };
  }

  private async createRow(o: CreateNetworkOptions, dns: boolean): Promise<NetworkRow> {
    const subnetIn = o.subnet !== undefined ? canonicalSubnet(o.subnet) : undefined;
    if (o.gateway !== undefined && subnetIn === undefined) throw invalid('--gateway needs --subnet');
    if (o.ipRange !== undefined && subnetIn === undefined) throw invalid('--ip-range needs --subnet');
    let mtu = 1500;
    const mtuOpt = o.options?.['com.docker.network.driver.mtu'] ?? o.options?.mtu;
    if (mtuOpt !== undefined) {
      mtu = Number(mtuOpt);
      if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw invalid(`invalid MTU ${mtuOpt}: 576-9000 bytes`);
    }
    const id = newId(this.t, this.root);
    // check what needs no claim before taking one
    if (subnetIn !== undefined) {
      const c = parseCidr(subnetIn);
      if (o.gateway !== undefined) hostIn(c, o.gateway, 'gateway');
      if (o.ipRange !== undefined) {
        const r = parseCidr(o.ipRange, 'ip range');
        if (!contains(c, networkOf(r)) || r.prefix < c.prefix) throw invalid(`invalid ip range ${o.ipRange}: it is not inside ${subnetIn}`);
      }
    }
    const subnet = await claimSubnet(this.root, id, subnetIn, this.exists);
    try {
      const c = parseCidr(subnet);
      const gateway = o.gateway ?? intToIp(networkOf(c) + 1);
      const r = row({
        id, name: o.name, driver: 'bridge', subnet, gateway, bridge: bridgeName(this.root, id), dns: dns ? 1 : 0, mtu,
        ip_range: o.ipRange ? `${intToIp(networkOf(parseCidr(o.ipRange)))}/${parseCidr(o.ipRange).prefix}` : '',
        internal: o.internal ? 1 : 0, labels_json: JSON.stringify(o.labels ?? {}), options_json: JSON.stringify(o.options ?? {}),
      });
      this.t.insertNetwork(r);
      return r;
    } catch (e) {
      releaseSubnet(this.root, id, subnet);
      if (!dns && this.t.networkByName(o.name)) return this.t.networkByName(o.name)!; // a racing process made `bridge`
      throw e;
    }
  }

  resolve(ref: string): NetworkRow {
    return this.t.resolveNetwork(ref);
  }

  list(): NetworkRow[] {
    return this.t.networks();
  }

  /**
   * docker network rm: refused for predefined networks and while a running container is on it
   * (`running` says which containers run); stopped containers lose their place on it.
   */
  remove(ref: string, running: (containerId: string) => boolean): NetworkRow {
    const n = this.resolve(ref);
    if ((PREDEFINED as readonly string[]).includes(n.name)) throw precondition(`${n.name} is a pre-defined network and cannot be removed`);
    const active = this.t.endpointsOn(n.id).filter((e) => e.ip !== null || running(e.container_id));
    if (active.length) throw conflict(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    this.t.deleteNetwork(n.id);
    releaseSubnet(this.root, n.id, n.subnet);
    return n;
  }

  /** docker network prune: user networks no container is on. */
  prune(): string[] {
    const out: string[] = [];
    for (const n of this.list()) {
      if ((PREDEFINED as readonly string[]).includes(n.name) || this.t.endpointsOn(n.id).length) continue;
      this.t.deleteNetwork(n.id);
      releaseSubnet(this.root, n.id, n.subnet);
      out.push(n.name);
    }
    return out;
  }
}

function row(p: Partial<NetworkRow> & Pick<NetworkRow, 'id' | 'name' | 'driver' | 'subnet' | 'gateway' | 'bridge'>): NetworkRow {
  return { ip_range: '', internal: 0, dns: 0, mtu: 1500, labels_json: '{}', options_json: '{}', created_at: nowIso(), ...p };
}

/** docker's network object (GET /networks/{id}, `network inspect`). */
export function networkView(n: NetworkRow, containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>): Record<string, unknown> {
  const config = n.subnet ? [{ Subnet: n.subnet, Gateway: n.gateway, ...(n.ip_range ? { IPRange: n.ip_range } : {}) }] : [];
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created_at,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: config },
    Internal: n.internal === 1,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: JSON.parse(n.options_json) as Record<string, string>,
    Labels: JSON.parse(n.labels_json) as Record<string, string>,
    // hull's own: the host bridge and whether names resolve on it
    Hull: { Bridge: n.bridge ?? '', DNS: n.dns === 1 },
  };
}
