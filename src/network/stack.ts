/**
 * The network stack of one hull root: what the engine calls to give an instance its network and
 * to take it away again. Both walls get the same thing from here, a prepared namespace (or none
 * or the host's) plus the text of /etc/hosts and /etc/resolv.conf; they never know the driver.
 *
 *   configure  at create: the container's place on its networks (rows, no kernel objects)
 *   prepare    before a start: namespace, addresses, veths, ports held, firewall, DNS names
 *   teardown   when a run ends, a start fails, or the container goes: all of it, exactly
 *   connect / disconnect   a network more or less, while created or (containers) running
 *
 * Concurrent hull processes of one root need no lock over a whole setup: addresses are taken by
 * the store's unique index, host ports by binding them, firewall changes are atomic element
 * statements (rebuilt from the store when they disagree with it); the bridge wiring and the DNS
 * files are changed under the root's network lock, which the idle cleanup takes too. Kernel
 * objects carry names unique to the root (names.ts).
 */
import fs from 'node:fs';
import { conflict, HullError, invalid, notFound, precondition } from '../errors.js';
import type { EtcFiles, NetnsSpec, Orphan } from '../runtime/types.js';
import { ContainerTables } from '../state/containers.js';
import { nowIso, type DB } from '../state/db.js';
import { createBridgeDriver, CNI_PATHS } from './cni-bridge.js';
import { applyDns, type DnsNetwork } from './dns.js';
import type { NetworkDriver } from './driver.js';
import { hostsFile, parseExtraHost, resolvConf } from './etc.js';
import { holdFreePort, holdPort, type HeldPort } from './hold.js';
import { firstFree, hostIn, intToIp, ipToInt, macForIp, overlaps, parseCidr, parseMac } from './ipam.js';
import { createNetns, netnsMounted, run, teardownScript } from './netns.js';
import { scheduleIdleCleanup, touchActivity } from './idle.js';
import { bridgePrefixOf, netnsPath, netPaths, nftTable } from './names.js';
import { Networks } from './networks.js';
import { applyRuleset, elementsScript, repairScript, tableScript, type FirewallNetwork, type FirewallPort, type FirewallState } from './nft.js';
import { clash, expandSpecs, exposedKeys, parsePublish, publishAllSpecs, type PortBinding } from './ports.js';
import { parseMode, validateNetRequest, type EndpointConfig, type NetRequest } from './request.js';
import type { EndpointRow, NetworkRow } from './store.js';
import { claimsOf, hostRoutes, releaseSubnet } from './subnets.js';
import { withFileLock } from './lock.js';

/** The instance the network is for. */
export interface Instance {
  id: string;
  name: string;
  wall: 'container' | 'vm';
  hostname: string;
}

/** What a start gets: how the wall joins the network, and the files it writes. */
export interface PreparedNetwork {
  network: 'none' | 'host' | 'netns';
  netns?: NetnsSpec;
  etc: EtcFiles;
  /** Held host ports: descriptors for the monitor. */
  heldFds: number[];
  /** Closes this process's copies of the held ports (after the monitor got them, or at exit). */
  closeHeld(): void;
}

function readHost(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const shortId = (id: string) => id.slice(0, 12);

export class NetworkStack {
  readonly networks: Networks;
  private readonly paths;
  private readonly table: string;
  private driverCache?: NetworkDriver;

  constructor(readonly root: string, private readonly db: DB, driver?: NetworkDriver) {
    this.networks = new Networks(root, db);
    this.paths = netPaths(root);
    this.table = nftTable(root);
    this.driverCache = driver;
  }

  private get t() {
    return this.networks.t;
  }

  private get driver(): NetworkDriver {
    if (!this.driverCache) {
      const dir = CNI_PATHS.find((d) => fs.existsSync(`${d}/bridge`));
      if (!dir) throw new HullError('UNAVAILABLE', 'the CNI bridge plugin is missing: bridge networks need it', { hint: 'apt-get install containernetworking-plugins' });
      this.driverCache = createBridgeDriver(dir);
    }
    return this.driverCache;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.paths.lock, fn);
  }

  // ------------------------------------------------------------------ create time

  /**
   * At create, after the container's row exists: validates the request against the store and
   * records the container's place on its networks. Fixed host ports are checked free now.
   */
  async configure(c: Instance, r: NetRequest): Promise<void> {
    const specs = validateNetRequest(r, c.wall);
    const mode = parseMode(r.mode);
    if (mode.kind === 'container') {
      const other = new ContainerTables(this.db).resolve(mode.ref);
      if (other.id === c.id) throw invalid('a container cannot join its own network namespace');
      return;
    }
    if (mode.kind !== 'network') return;
    await this.networks.ensurePredefined();
    const wanted: [string, EndpointConfig][] = [[mode.name, r.primary], ...Object.entries(r.more).filter(([n]) => n !== mode.name)];
    const nets = wanted.map(([ref, e]) => [this.usable(ref), e] as const);
    if (nets.length > 6 && c.wall === 'vm') throw invalid('a VM can be on at most 6 networks (one virtio-mmio NIC each)');
    for (const [n, e] of nets) this.addEndpoint(c.id, n, e);
    // ports: on the first network, which must route out
    if ((specs.length || r.publishAll) && nets[0]![0].internal) throw invalid(`ports cannot be published on the internal network ${nets[0]![0].name}`);
    for (const s of specs) {
      if (s.hostStart === 0 || s.hostEnd !== s.hostStart + (s.containerEnd - s.containerStart)) continue;
      for (let p = s.hostStart; p <= s.hostEnd; p++) {
        const b = { proto: s.proto, hostIp: s.hostIp, hostPort: p };
        if (this.t.allPorts().some((x) => clash({ proto: x.proto, hostIp: x.host_ip, hostPort: x.host_port }, b))) throw this.portTaken(b);
        (await holdPort(s.proto, s.hostIp, p)).close();
      }
    }
  }

  private portTaken(b: { proto: string; hostIp: string; hostPort: number }): HullError {
    return conflict(`Bind for ${b.hostIp || '0.0.0.0'}:${b.hostPort}${b.proto === 'udp' ? '/udp' : ''} failed: port is already allocated`);
  }

  /** A network a container can be on (bridge driver), by name or id. */
  private usable(ref: string): NetworkRow {
    const n = this.t.findNetwork(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    if (n.driver !== 'bridge') throw invalid(`container cannot be connected to the ${n.name} network alongside others; use --network ${n.name}`);
    return n;
  }

  private addEndpoint(containerId: string, n: NetworkRow, e: EndpointConfig): EndpointRow {
    const user = n.name !== 'bridge';
    if (e.aliases?.length && !user) throw invalid('network-scoped alias is supported only for containers in user defined networks');
    if (e.ip !== undefined) {
      if (!user) throw invalid('user specified IP address is supported on user defined networks only');
      const ip = hostIn(parseCidr(n.subnet), e.ip, `--ip for network ${n.name}`);
      if (ip === ipToInt(n.gateway)) throw invalid(`--ip ${e.ip} is the gateway of network ${n.name}`);
    }
    return this.t.insertEndpoint({
      network_id: n.id, container_id: containerId, aliases_json: JSON.stringify(e.aliases ?? []),
      static_ip: e.ip ?? '', static_mac: e.mac !== undefined ? parseMac(e.mac) : '',
    });
  }

  // ------------------------------------------------------------------ start

  /** Before a start: the network the instance joins and its /etc files. Undoes itself on failure. */
  async prepare(c: Instance, r: NetRequest): Promise<PreparedNetwork> {
    const mode = parseMode(r.mode);
    const hostResolv = readHost('/etc/resolv.conf');
    const none = { heldFds: [], closeHeld: () => undefined };
    const extra = async () => this.extraHosts(r.extraHosts, undefined);
    if (mode.kind === 'none') {
      const etc = { hosts: hostsFile({ hostname: c.hostname, ips: [], extraHosts: await extra() }), resolvConf: resolvConf({ dns: r.dns, search: r.dnsSearch, options: r.dnsOptions, host: hostResolv }) };
      return { network: 'none', etc, ...none };
    }
    if (mode.kind === 'host') {
      const etc = {
        hosts: hostsFile({ hostname: c.hostname, ips: [], extraHosts: await extra(), hostNetwork: readHost('/etc/hosts') }),
        resolvConf: resolvConf({ dns: r.dns, search: r.dnsSearch, options: r.dnsOptions, host: hostResolv, hostNetwork: true }),
      };
      return { network: 'host', etc, ...none };
    }
    if (mode.kind === 'container') return this.joinOther(mode.ref);
    return this.setup(c, r, hostResolv);
  }

  /** --network container:X: X's namespace and X's files. */
  private async joinOther(ref: string): Promise<PreparedNetwork> {
    const rows = new ContainerTables(this.db);
    const other = rows.resolve(ref);
    if (other.status !== 'running') throw precondition(`cannot join the network namespace of container ${other.name}: it is not running`);
    const sb = this.t.sandbox(other.id);
    let path = sb?.netns;
    if (!path && other.pid > 0) path = `/proc/${other.pid}/ns/net`;
    if (!path || !fs.existsSync(path)) throw precondition(`cannot join the network namespace of container ${other.name}: it has none of its own (yet)`);
    // X's own files when hull made its namespace; else what a namespace without networks has
    const etc = sb?.hosts
      ? { hosts: sb.hosts, resolvConf: sb.resolv }
      : { hosts: hostsFile({ hostname: shortId(other.id), ips: [], extraHosts: [] }), resolvConf: resolvConf({ dns: [], search: [], options: [], host: readHost('/etc/resolv.conf') }) };
    return { network: 'netns', netns: { path, shared: true, interfaces: [] }, etc, heldFds: [], closeHeld: () => undefined };
  }

  private async extraHosts(list: string[], gateway: string | undefined): Promise<{ name: string; ip: string }[]> {
    const out = list.map(parseExtraHost);
    if (!out.some((h) => h.ip === 'host-gateway')) return out;
    let gw = gateway;
    if (!gw) {
      await this.networks.ensurePredefined();
      gw = this.t.networkByName('bridge')!.gateway;
    }
    return out.map((h) => (h.ip === 'host-gateway' ? { ...h, ip: gw! } : h));
  }

  /**
   * Sets up the container's networks. No lock over the whole: addresses are taken by the store's
   * unique index (allocate retries), ports by binding them, firewall changes are atomic element
   * statements; the wiring holds the network lock (against the idle cleanup), and so does the
   * DNS update.
   */
  private async setup(c: Instance, r: NetRequest, hostResolv: string): Promise<PreparedNetwork> {
    // what an earlier run of this container left (a killed hull): gone first
    await this.teardownNow(c.id);
    const eps = this.t.endpointsOf(c.id);
    if (eps.length === 0) throw precondition(`container ${c.name} is on no network (it was disconnected from all of them)`);
    const nets = eps.map((e) => {
      const n = this.t.network(e.network_id);
      if (!n) throw notFound(`network ${e.network_id} of container ${c.name} not found (it was removed)`);
      return n;
    });
    this.checkRoutes(nets);
    const held: HeldPort[] = [];
    const closeHeld = () => held.splice(0).forEach((h) => h.close());
    const file = netnsPath(this.root, c.id);
    try {
      this.t.insertSandbox({ container_id: c.id, netns: file, created_at: nowIso() });
      const addrs = eps.map((e, i) => this.allocate(e, nets[i]!));
      await createNetns(file);
      const interfaces: NetnsSpec['interfaces'] = [];
      const routeVia = nets.findIndex((n) => n.internal === 0);
      // the wiring under the lock the idle cleanup takes: whether a bridge is new is known exactly
      const fresh = await this.locked(async () => {
        touchActivity(this.paths.lock, nets.map((n) => n.bridge!));
        const made = nets.filter((n) => !fs.existsSync(`/sys/class/net/${n.bridge}`));
        for (let i = 0; i < eps.length; i++) {
          const n = nets[i]!;
          const prefix = parseCidr(n.subnet).prefix;
          const res = await this.driver.attach({
            netns: file, ifname: `eth${i}`, containerId: c.id, bridge: n.bridge!, mtu: n.mtu,
            ip: addrs[i]!.ip, prefix, gateway: n.gateway, mac: addrs[i]!.mac, defaultRoute: i === routeVia,
          });
          this.t.setVeth(n.id, c.id, res.veth);
          this.t.setDns(n.id, c.id, { names: this.dnsNames(c, eps[i]!), servers: r.dns });
          bridgeSysctls(n.bridge!);
          interfaces.push({ name: `eth${i}`, mac: res.mac, mtu: n.mtu, address: `${addrs[i]!.ip}/${prefix}` });
        }
        return made;
      });
      // published ports go to the first network's address
      // -P: every exposed port that no -p binds already (docker's rule)
      const asked = r.publish.map(parsePublish);
      const bound = (k: string) => {
        const x = parsePublish(k);
        return asked.some((a) => a.proto === x.proto && x.containerStart >= a.containerStart && x.containerStart <= a.containerEnd);
      };
      const specs = [...asked, ...(r.publishAll ? publishAllSpecs(exposedKeys(r.exposed).filter((k) => !bound(k))) : [])];
      const taken = this.t.allPorts();
      const bindings = await expandSpecs(specs, async (proto, hostIp, lo, hi) => {
        const h = await holdFreePort(proto, hostIp, lo, hi);
        held.push(h);
        return h.port;
      });
      for (const b of bindings) {
        if (taken.some((x) => clash({ proto: x.proto, hostIp: x.host_ip, hostPort: x.host_port }, b))) throw this.portTaken(b);
        if (!held.some((h) => h.proto === b.proto && h.port === b.hostPort && h.hostIp === b.hostIp)) held.push(await holdPort(b.proto, b.hostIp, b.hostPort));
        this.t.insertPort({ container_id: c.id, proto: b.proto, host_ip: b.hostIp, host_port: b.hostPort, container_port: b.containerPort });
      }
      // the firewall: elements for bridges that came up and for the ports (none: nothing to do)
      const target = addrs[0]!.ip;
      const fwPorts = bindings.map((b) => ({ proto: b.proto, hostIp: b.hostIp, hostPort: b.hostPort, ip: target, port: b.containerPort }));
      if (fresh.length || fwPorts.length) await this.firewallUp(nets, fwPorts, fresh.length === nets.length);
      if (nets.some((n) => n.dns === 1)) await this.locked(() => this.applyNames(nets.filter((n) => n.dns === 1).map((n) => n.id)));
      const gwNet = routeVia >= 0 ? nets[routeVia] : undefined;
      const dnsNet = nets.find((n) => n.dns === 1);
      const etc = {
        hosts: hostsFile({ hostname: c.hostname, ips: [addrs[0]!.ip], extraHosts: await this.extraHosts(r.extraHosts, (gwNet ?? nets[0]!).gateway) }),
        resolvConf: resolvConf({ embedded: dnsNet?.gateway, dns: r.dns, search: r.dnsSearch, options: r.dnsOptions, host: hostResolv }),
      };
      this.t.setSandboxEtc(c.id, etc.hosts, etc.resolvConf);
      return {
        network: 'netns',
        netns: { path: file, interfaces, gateway: gwNet?.gateway },
        etc,
        heldFds: held.map((h) => h.fd),
        closeHeld,
      };
    } catch (e) {
      closeHeld();
      await this.teardownNow(c.id).catch(() => undefined);
      throw e;
    }
  }

  /** A subnet whose route is on some other device (a foreign bridge took it) cannot work. */
  private checkRoutes(nets: NetworkRow[]): void {
    const routes = hostRoutes();
    for (const n of nets) {
      const c = parseCidr(n.subnet);
      const bad = routes.find((r) => r.dev !== n.bridge && overlaps(r, c));
      if (bad) throw new HullError('UNAVAILABLE', `network ${n.name} (${n.subnet}) collides with the route ${intToIp(bad.addr)}/${bad.prefix} on ${bad.dev}: remove that, or recreate the network with another --subnet`);
    }
  }

  /** Picks the endpoint's address (its --ip, or the lowest free) and MAC, and records them. */
  private allocate(e: EndpointRow, n: NetworkRow): { ip: string; mac: string } {
    const subnet = parseCidr(n.subnet);
    for (let attempt = 0; ; attempt++) {
      let ip = e.static_ip;
      if (!ip) {
        const used = new Set(this.t.usedAddresses(n.id).map((x) => ipToInt(x)!));
        const free = firstFree(subnet, ipToInt(n.gateway)!, used, n.ip_range ? parseCidr(n.ip_range) : undefined);
        if (free === undefined) throw new HullError('UNAVAILABLE', `no free address left on network ${n.name} (${n.ip_range || n.subnet})`);
        ip = intToIp(free);
      }
      const mac = e.static_mac || macForIp(ip);
      try {
        this.t.setAddress(n.id, e.container_id, ip, mac);
        return { ip, mac };
      } catch (x) {
        // another start took it between the look and the write: look again (a fixed --ip: taken)
        if (e.static_ip || attempt > 20 || !(x instanceof HullError && x.code === 'CONFLICT')) throw x;
      }
    }
  }

  /** The names a container answers to on a network with DNS: name, aliases, short id. */
  private dnsNames(c: Instance, e: EndpointRow): string[] {
    return [c.name, ...(JSON.parse(e.aliases_json) as string[]), shortId(c.id)];
  }

  // ------------------------------------------------------------------ end of a run

  /** Removes everything the container's network had (idempotent; cheap when it had nothing). */
  /**
   * docker rename: a set-up container answers to its new name on its networks at once (its
   * endpoints' DNS names rewritten, aardvark reloaded). Nothing to do when it is not set up.
   */
  async rename(containerId: string, oldName: string, newName: string): Promise<void> {
    const eps = this.t.activeEndpoints().filter((e) => e.container_id === containerId);
    if (eps.length === 0) return;
    await this.locked(async () => {
      const changed: string[] = [];
      for (const e of eps) {
        const d = JSON.parse(e.dns_json) as { names?: string[]; servers?: string[] };
        if (!d.names) continue;
        this.t.setDns(e.network_id, containerId, { names: d.names.map((n) => (n === oldName ? newName : n)), servers: d.servers ?? [] });
        if (this.t.network(e.network_id)?.dns === 1) changed.push(e.network_id);
      }
      if (changed.length) await this.applyNames(changed);
    });
  }

  async teardown(containerId: string): Promise<void> {
    const busy = this.t.sandbox(containerId) || this.t.endpointsOf(containerId).some((e) => e.ip || e.veth) || this.t.portsOf(containerId).length || fs.existsSync(netnsPath(this.root, containerId));
    if (!busy) return;
    await this.teardownNow(containerId);
  }

  private async teardownNow(containerId: string): Promise<void> {
    const sb = this.t.sandbox(containerId);
    const file = sb?.netns ?? netnsPath(this.root, containerId);
    const set = this.t.endpointsOf(containerId).filter((e) => e.ip || e.veth);
    const ports = this.t.portsOf(containerId);
    const mounted = netnsMounted(file);
    if (!sb && set.length === 0 && ports.length === 0 && !mounted && !fs.existsSync(file)) return;
    const fwPorts: FirewallPort[] = [];
    const target = set.sort((a, b) => a.idx - b.idx)[0]?.ip;
    if (target) for (const p of ports) fwPorts.push({ proto: p.proto, hostIp: p.host_ip, hostPort: p.host_port, ip: target, port: p.container_port });
    // the port forwards go first, then the namespace, and only then are the addresses free again
    if (fwPorts.length) await this.firewallChange('delete', { networks: [], ports: fwPorts });
    this.t.deletePorts(containerId);
    // Dropping the namespace file destroys the namespace and the veth pairs in it (the kernel
    // does that asynchronously, in tens of ms). A container that joined this namespace
    // (--network container:) keeps it alive: then the veths are deleted here and now.
    const links = this.joined(containerId) ? set.flatMap((e) => this.driver.detachLinks(e)) : [];
    if (links.length) await run(['sh', '-c', teardownScript(links, file)], `removing the network of container ${shortId(containerId)}`);
    else if (mounted) await run(['umount', file], `removing the network namespace of container ${shortId(containerId)}`);
    fs.rmSync(file, { force: true });
    this.t.deleteSandbox(containerId);
    for (const e of set) this.t.clearAddress(e.network_id, containerId);
    const idle = [...new Set(set.map((e) => e.network_id))]
      .map((id) => this.t.network(id))
      .filter((n): n is NetworkRow => !!n?.bridge && !this.t.endpointsOn(n.id).some((x) => x.ip));
    // bridges with nothing on them go a moment later (idle.ts), so back-to-back runs keep theirs
    touchActivity(this.paths.lock, idle.map((n) => n.bridge!));
    if (idle.length) scheduleIdleCleanup(this.paths.lock, idle.map((n) => n.bridge!), bridgePrefixOf(this.root), this.table);
    if (set.some((e) => this.t.network(e.network_id)?.dns === 1)) await this.locked(() => this.applyNames([]));
  }

  /** Whether a running container shares this container's network namespace. */
  private joined(containerId: string): boolean {
    const row = new ContainerTables(this.db).get(containerId);
    if (!row) return false;
    const rows = this.db
      .prepare("SELECT spec_json FROM containers WHERE status = 'running' AND id != ? AND spec_json LIKE '%\"network\":\"container:%'")
      .all(containerId) as { spec_json: string }[];
    return rows.some((r) => {
      const m = /"network":"container:([^"]+)"/.exec(r.spec_json);
      return !!m && (m[1] === row.name || m[1] === row.id || (m[1]!.length >= 3 && row.id.startsWith(m[1]!)));
    });
  }

  /** Elements for networks that came up and ports (creating the table when `maybeNew`). */
  private async firewallUp(nets: NetworkRow[], ports: FirewallPort[], maybeNew: boolean): Promise<void> {
    const state: FirewallState = { networks: nets.map(fwNetwork), ports };
    if (maybeNew) {
      try {
        return await applyRuleset(`${tableScript(this.table)}\n${elementsScript(this.table, 'add', state)}\n`);
      } catch {
        /* it exists: add the elements alone */
      }
    }
    await this.firewallChange('add', state);
  }

  /** Adds or deletes elements; when the table does not hold what the store expects, rebuilds it. */
  private async firewallChange(op: 'add' | 'delete', state: FirewallState): Promise<void> {
    try {
      await applyRuleset(`${elementsScript(this.table, op, state)}\n`);
    } catch {
      await this.locked(() => applyRuleset(repairScript(this.table, this.firewallState())));
    }
  }

  /** The firewall table from the store: networks with something set up, published ports. */
  private firewallState(): FirewallState {
    const active = this.t.activeEndpoints();
    const nets = [...new Set(active.map((e) => e.network_id))].map((id) => this.t.network(id)).filter((n): n is NetworkRow => !!n && !!n.bridge);
    const ports = [];
    for (const p of this.t.allPorts()) {
      const target = active.filter((e) => e.container_id === p.container_id).sort((a, b) => a.idx - b.idx)[0];
      if (target?.ip) ports.push({ proto: p.proto, hostIp: p.host_ip, hostPort: p.host_port, ip: target.ip, port: p.container_port });
    }
    return { networks: nets.map(fwNetwork), ports };
  }


  /** DNS: every network with names and something set up; `confirm` waits for those to answer. */
  private async applyNames(confirm: string[]): Promise<void> {
    const active = this.t.activeEndpoints();
    const nets: DnsNetwork[] = [];
    for (const id of new Set(active.map((e) => e.network_id))) {
      const n = this.t.network(id);
      if (!n || n.dns !== 1) continue;
      const entries = active
        .filter((e) => e.network_id === id)
        .map((e) => {
          const d = JSON.parse(e.dns_json) as { names?: string[]; servers?: string[] };
          return { id: e.container_id, ip: e.ip!, names: d.names ?? [shortId(e.container_id)], servers: d.servers };
        });
      nets.push({ id: n.id, gateway: n.gateway, entries });
    }
    await applyDns(this.paths.dnsDir, nets, confirm);
  }

  // ------------------------------------------------------------------ connect / disconnect

  /**
   * docker network connect. A created or stopped container gets its place for the next start; a
   * running container gets the interface now (`live` gives its instance). VMs: before they run.
   */
  async connect(netRef: string, c: Instance & { mode: string; running: boolean }, e: EndpointConfig): Promise<void> {
    const mode = parseMode(c.mode);
    if (mode.kind !== 'network') throw precondition(`container ${c.name} shares the ${mode.kind === 'container' ? 'network namespace of another container' : `${mode.kind} network`} and cannot be connected to any other network`);
    await this.networks.ensurePredefined();
    const n = this.usable(netRef);
    if (c.running && c.wall === 'vm') throw precondition(`VM ${c.name} is running: a microVM gains a NIC only at boot (no hotplug). Stop it, connect, and start it again`);
    validateNetRequest({ mode: n.name, primary: e, more: {}, publish: [], publishAll: false, exposed: [], dns: [], dnsSearch: [], dnsOptions: [], extraHosts: [] }, c.wall);
    const ep = this.addEndpoint(c.id, n, e);
    if (!c.running) return;
    await this.locked(async () => {
      touchActivity(this.paths.lock, [n.bridge!]);
      const sb = this.t.sandbox(c.id);
      try {
        if (!sb) throw precondition(`container ${c.name} has no network namespace of its own to connect`);
        this.checkRoutes([n]);
        const a = this.allocate(ep, n);
        const res = await this.driver.attach({
          netns: sb.netns, ifname: `eth${ep.idx}`, containerId: c.id, bridge: n.bridge!, mtu: n.mtu,
          ip: a.ip, prefix: parseCidr(n.subnet).prefix, gateway: n.gateway, mac: a.mac, defaultRoute: false,
        });
        this.t.setVeth(n.id, c.id, res.veth);
        this.t.setDns(n.id, c.id, { names: this.dnsNames(c, ep), servers: [] });
        bridgeSysctls(n.bridge!);
        await this.firewallUp([n], [], true);
        if (n.dns === 1) await this.applyNames([n.id]);
      } catch (x) {
        await this.dropEndpoint(n, c.id, false).catch(() => undefined);
        throw x;
      }
    });
  }

  /** docker network disconnect (a running VM: refused). */
  async disconnect(netRef: string, c: Instance & { running: boolean }): Promise<void> {
    const n = this.networks.resolve(netRef);
    const ep = this.t.endpointsOf(c.id).find((x) => x.network_id === n.id);
    if (!ep) throw notFound(`container ${c.name} is not connected to network ${n.name}`);
    if (c.running && c.wall === 'vm') throw precondition(`VM ${c.name} is running: a microVM keeps its NICs until it stops. Stop it first`);
    if (!ep.ip && !ep.veth) return this.t.deleteEndpoint(n.id, c.id);
    await this.dropEndpoint(n, c.id);
  }

  private async dropEndpoint(n: NetworkRow, containerId: string, lockDns = true): Promise<void> {
    const ep = this.t.endpointsOf(containerId).find((x) => x.network_id === n.id);
    if (!ep) return;
    const links = this.driver.detachLinks(ep);
    const first = this.t.endpointsOf(containerId).filter((x) => x.ip).sort((a, b) => a.idx - b.idx)[0];
    const ports = first?.network_id === n.id ? this.t.portsOf(containerId) : [];
    this.t.deleteEndpoint(n.id, containerId);
    if (links.length) await run(['sh', '-c', teardownScript(links, undefined)], `disconnecting ${shortId(containerId)} from ${n.name}`);
    // ports went to this network's address: they lead nowhere now
    if (ports.length && first?.ip) await this.firewallChange('delete', { networks: [], ports: ports.map((p) => ({ proto: p.proto, hostIp: p.host_ip, hostPort: p.host_port, ip: first.ip!, port: p.container_port })) });
    if (n.bridge && !this.t.endpointsOn(n.id).some((x) => x.ip)) {
      touchActivity(this.paths.lock, [n.bridge]);
      scheduleIdleCleanup(this.paths.lock, [n.bridge], bridgePrefixOf(this.root), this.table);
    }
    if (n.dns === 1) await (lockDns ? this.locked(() => this.applyNames([])) : this.applyNames([]));
  }

  // ------------------------------------------------------------------ views and sweeping

  /** The container's endpoints with their networks (for inspect and ps). */
  endpoints(containerId: string): { ep: EndpointRow; net: NetworkRow | undefined }[] {
    return this.t.endpointsOf(containerId).map((ep) => ({ ep, net: this.t.network(ep.network_id) }));
  }

  /** Held ports of a running container, as set up. */
  bindings(containerId: string): PortBinding[] {
    return this.t.portsOf(containerId).map((p) => ({ proto: p.proto, hostIp: p.host_ip, hostPort: p.host_port, containerPort: p.container_port }));
  }

  sandboxPath(containerId: string): string | undefined {
    return this.t.sandbox(containerId)?.netns;
  }

  /** Where the root's namespace files live (every mount under it is the stack's). */
  get netnsDir(): string {
    return this.paths.netnsDir;
  }

  /**
   * For `hull system check`: the network of every container not in `live` that still has any
   * (a namespace file or mount, addresses, published ports: what a killed hull left), and the
   * subnet claims of networks that are gone. Each fix tears it down.
   */
  orphans(live: Set<string>): Orphan[] {
    const ids = new Set<string>([
      ...this.t.sandboxes().map((s) => s.container_id),
      ...this.t.activeEndpoints().map((e) => e.container_id),
      ...this.t.allPorts().map((p) => p.container_id),
    ]);
    try {
      for (const f of fs.readdirSync(this.paths.netnsDir)) ids.add(f);
    } catch {
      /* none yet */
    }
    const out: Orphan[] = [];
    for (const id of ids) {
      if (live.has(id)) continue;
      const parts = [
        fs.existsSync(netnsPath(this.root, id)) ? `namespace ${netnsPath(this.root, id)}` : '',
        ...this.t.endpointsOf(id).filter((e) => e.ip).map((e) => `address ${e.ip}`),
        ...this.t.portsOf(id).map((p) => `port ${p.host_ip || '0.0.0.0'}:${p.host_port}/${p.proto}`),
      ].filter(Boolean);
      out.push({ kind: 'network', id, what: `network of container ${shortId(id)}: ${parts.join(', ') || 'state'}`, fix: () => this.teardown(id) });
    }
    for (const c of claimsOf(this.root)) {
      if (this.t.network(c.network)) continue;
      out.push({ kind: 'subnet-claim', what: `subnet ${c.subnet} claimed for removed network ${shortId(c.network)}`, fix: async () => releaseSubnet(this.root, c.network, c.subnet) });
    }
    return out;
  }
}

function fwNetwork(n: NetworkRow): FirewallNetwork {
  return { bridge: n.bridge!, subnet: n.subnet, internal: n.internal === 1, ...(n.dns === 1 ? { dns: n.gateway } : {}) };
}

/** The bridge passes 127.0.0.1-sourced connections to published ports, and forwards. */
function bridgeSysctls(bridge: string): void {
  for (const [k, v] of [['route_localnet', '1'], ['forwarding', '1']]) {
    try {
      fs.writeFileSync(`/proc/sys/net/ipv4/conf/${bridge}/${k}`, v);
    } catch {
      /* the bridge is gone again */
    }
  }
}
