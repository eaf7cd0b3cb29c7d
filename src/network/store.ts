/**
 * hull's network store: rows in the root's SQLite (schema in src/state/db.ts, migration 2).
 * Every statement the network stack uses, nothing else.
 */
import { conflict, notFound } from '../errors.js';
import type { DB } from '../state/db.js';

export interface NetworkRow {
  id: string;
  name: string;
  driver: 'bridge' | 'host' | 'null';
  subnet: string;
  gateway: string;
  ip_range: string;
  internal: number;
  dns: number;
  bridge: string | null;
  mtu: number;
  labels_json: string;
  options_json: string;
  created_at: string;
}

export interface EndpointRow {
  network_id: string;
  container_id: string;
  idx: number;
  aliases_json: string;
  static_ip: string;
  static_mac: string;
  ip: string | null;
  mac: string | null;
  veth: string | null;
  /** While set up: {"names": [...], "servers": [...]} for the network's DNS server. */
  dns_json: string;
}

export interface PortRow {
  container_id: string;
  proto: 'tcp' | 'udp';
  host_ip: string;
  host_port: number;
  container_port: number;
}

export interface SandboxRow {
  container_id: string;
  netns: string;
  /** The /etc files made for it (what --network container:X shares). */
  hosts: string;
  resolv: string;
  created_at: string;
}

export class NetworkTables {
  constructor(readonly db: DB) {}

  // ------------------------------------------------------------ networks

  insertNetwork(r: NetworkRow): void {
    try {
      this.db
        .prepare(
          `INSERT INTO networks (id, name, driver, subnet, gateway, ip_range, internal, dns, bridge, mtu, labels_json, options_json, created_at)
           VALUES (@id, @name, @driver, @subnet, @gateway, @ip_range, @internal, @dns, @bridge, @mtu, @labels_json, @options_json, @created_at)`,
        )
        .run(r);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw conflict(`network with name ${r.name} already exists`, e);
      throw e;
    }
  }

  network(id: string): NetworkRow | undefined {
    return this.db.prepare('SELECT * FROM networks WHERE id = ?').get(id) as NetworkRow | undefined;
  }

  networkByName(name: string): NetworkRow | undefined {
    return this.db.prepare('SELECT * FROM networks WHERE name = ?').get(name) as NetworkRow | undefined;
  }

  /** docker's lookup: full id, exact name, then a unique id prefix. */
  findNetwork(ref: string): NetworkRow | undefined {
    const exact = this.network(ref) ?? this.networkByName(ref);
    if (exact) return exact;
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
    const rows = this.db.prepare('SELECT * FROM networks WHERE id LIKE ? LIMIT 2').all(`${ref}%`) as NetworkRow[];
    if (rows.length > 1) throw conflict(`network ${ref} is ambiguous (${rows.length} matches found on id prefix)`);
    return rows[0];
  }

  resolveNetwork(ref: string): NetworkRow {
    const n = this.findNetwork(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    return n;
  }

  networks(): NetworkRow[] {
    return this.db.prepare('SELECT * FROM networks ORDER BY created_at, name').all() as NetworkRow[];
  }

  deleteNetwork(id: string): void {
    this.db.prepare('DELETE FROM endpoints WHERE network_id = ?').run(id);
    this.db.prepare('DELETE FROM networks WHERE id = ?').run(id);
  }

  bridgeTaken(bridge: string): boolean {
    return this.db.prepare('SELECT 1 FROM networks WHERE bridge = ?').get(bridge) !== undefined;
  }

  // ------------------------------------------------------------ endpoints

  /** Adds a container to a network (its configuration; no address yet). CONFLICT when it is on it. */
  insertEndpoint(r: Pick<EndpointRow, 'network_id' | 'container_id' | 'aliases_json' | 'static_ip' | 'static_mac'>): EndpointRow {
    const idx = (this.db.prepare('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM endpoints WHERE container_id = ?').get(r.container_id) as { n: number }).n;
    try {
      this.db
        .prepare('INSERT INTO endpoints (network_id, container_id, idx, aliases_json, static_ip, static_mac) VALUES (@network_id, @container_id, @idx, @aliases_json, @static_ip, @static_mac)')
        .run({ ...r, idx });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw conflict(`container ${r.container_id.slice(0, 12)} is already attached to network ${r.network_id.slice(0, 12)}`, e);
      throw e;
    }
    return { ...r, idx, ip: null, mac: null, veth: null, dns_json: '{}' };
  }

  endpointsOf(containerId: string): EndpointRow[] {
    return this.db.prepare('SELECT * FROM endpoints WHERE container_id = ? ORDER BY idx').all(containerId) as EndpointRow[];
  }

  endpointsOn(networkId: string): EndpointRow[] {
    return this.db.prepare('SELECT * FROM endpoints WHERE network_id = ? ORDER BY container_id').all(networkId) as EndpointRow[];
  }

  /** Endpoints with an address (set up), over the whole root. */
  activeEndpoints(): EndpointRow[] {
    return this.db.prepare('SELECT * FROM endpoints WHERE ip IS NOT NULL ORDER BY network_id, container_id').all() as EndpointRow[];
  }

  deleteEndpoint(networkId: string, containerId: string): void {
    this.db.prepare('DELETE FROM endpoints WHERE network_id = ? AND container_id = ?').run(networkId, containerId);
  }

  /** Records the address, MAC and veth of a set-up endpoint; CONFLICT when the address is taken. */
  setAddress(networkId: string, containerId: string, ip: string, mac: string): void {
    try {
      this.db.prepare('UPDATE endpoints SET ip = ?, mac = ? WHERE network_id = ? AND container_id = ?').run(ip, mac, networkId, containerId);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict(`Address already in use: ${ip}`, e);
      throw e;
    }
  }

  setVeth(networkId: string, containerId: string, veth: string): void {
    this.db.prepare('UPDATE endpoints SET veth = ? WHERE network_id = ? AND container_id = ?').run(veth, networkId, containerId);
  }

  setDns(networkId: string, containerId: string, dns: { names: string[]; servers: string[] }): void {
    this.db.prepare('UPDATE endpoints SET dns_json = ? WHERE network_id = ? AND container_id = ?').run(JSON.stringify(dns), networkId, containerId);
  }

  clearAddress(networkId: string, containerId: string): void {
    this.db.prepare("UPDATE endpoints SET ip = NULL, mac = NULL, veth = NULL, dns_json = '{}' WHERE network_id = ? AND container_id = ?").run(networkId, containerId);
  }

  usedAddresses(networkId: string): string[] {
    return (this.db.prepare('SELECT ip FROM endpoints WHERE network_id = ? AND ip IS NOT NULL').all(networkId) as { ip: string }[]).map((r) => r.ip);
  }

  // ------------------------------------------------------------ published ports

  insertPort(p: PortRow): void {
    try {
      this.db.prepare('INSERT INTO published_ports (container_id, proto, host_ip, host_port, container_port) VALUES (@container_id, @proto, @host_ip, @host_port, @container_port)').run(p);
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw conflict(`Bind for ${p.host_ip || '0.0.0.0'}:${p.host_port} failed: port is already allocated`, e);
      throw e;
    }
  }

  portsOf(containerId: string): PortRow[] {
    return this.db.prepare('SELECT * FROM published_ports WHERE container_id = ? ORDER BY container_port, proto, host_ip').all(containerId) as PortRow[];
  }

  allPorts(): PortRow[] {
    return this.db.prepare('SELECT * FROM published_ports ORDER BY host_port').all() as PortRow[];
  }

  deletePorts(containerId: string): void {
    this.db.prepare('DELETE FROM published_ports WHERE container_id = ?').run(containerId);
  }

  // ------------------------------------------------------------ sandboxes

  insertSandbox(r: Pick<SandboxRow, 'container_id' | 'netns' | 'created_at'>): void {
    this.db.prepare('INSERT OR REPLACE INTO sandboxes (container_id, netns, created_at) VALUES (@container_id, @netns, @created_at)').run(r);
  }

  setSandboxEtc(containerId: string, hosts: string, resolv: string): void {
    this.db.prepare('UPDATE sandboxes SET hosts = ?, resolv = ? WHERE container_id = ?').run(hosts, resolv, containerId);
  }

  sandbox(containerId: string): SandboxRow | undefined {
    return this.db.prepare('SELECT * FROM sandboxes WHERE container_id = ?').get(containerId) as SandboxRow | undefined;
  }

  sandboxes(): SandboxRow[] {
    return this.db.prepare('SELECT * FROM sandboxes ORDER BY created_at').all() as SandboxRow[];
  }

  deleteSandbox(containerId: string): void {
    this.db.prepare('DELETE FROM sandboxes WHERE container_id = ?').run(containerId);
  }
}
