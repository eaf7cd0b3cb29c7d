/**
 * Networks as the engine's callers see them (CLI `hull network ...`, `hull port`, the Engine
 * API's /networks): an adapter over src/network's stack that knows containers (rows, specs,
 * which ones run). The lifecycle itself (engine.ts) only calls prepare and teardown.
 */
import { HullError, invalid } from '../errors.js';
import { networkView, PREDEFINED, type CreateNetworkOptions } from '../network/networks.js';
import { exposedKeys, portBindingsView, portsText, portsView, parsePublish, type PortBinding } from '../network/ports.js';
import { parseMode, type EndpointConfig } from '../network/request.js';
import type { NetworkStack } from '../network/stack.js';
import type { NetworkRow } from '../network/store.js';
import type { ContainerRow, ContainerTables } from '../state/containers.js';
import type { StoredSpec } from './inspect.js';
import { netRequest } from './options.js';
import { addEvent } from '../state/db.js';

/** What the service needs of the engine. */
export interface EngineAccess {
  stack: NetworkStack;
  rows: ContainerTables;
  stored(row: ContainerRow): StoredSpec;
  /** The row brought up to date (a running container whose process ended is marked exited). */
  fresh(row: ContainerRow): Promise<ContainerRow>;
}

/** docker's NetworkSettings, the network parts of HostConfig and Config, and ps' ports. */
export interface ContainerNetView {
  NetworkSettings: Record<string, unknown>;
  HostConfig: { NetworkMode: string; PortBindings: Record<string, unknown>; PublishAllPorts: boolean; Dns: string[]; DnsSearch: string[]; DnsOptions: string[]; ExtraHosts: string[] | null };
  ExposedPorts: Record<string, object>;
  /** ps: [{IP, PrivatePort, PublicPort, Type}] and the PORTS text. */
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[];
  PortsText: string;
  MacAddress: string;
}

export class NetworkService {
  constructor(private readonly e: EngineAccess) {}

  private get stack(): NetworkStack {
    return this.e.stack;
  }

  private running(id: string): boolean {
    const st = this.e.rows.get(id)?.status;
    return st === 'running' || st === 'paused';
  }

  async create(o: CreateNetworkOptions): Promise<{ id: string; name: string; existed: boolean }> {
    const { row, existed } = await this.stack.networks.create(o);
    if (!existed) this.event('create', row.id, { name: row.name, type: row.driver });
    return { id: row.id, name: row.name, existed };
  }

  async list(filter: { name?: string } = {}): Promise<Record<string, unknown>[]> {
    await this.stack.networks.ensurePredefined();
    return this.stack.networks.list().filter((n) => !filter.name || n.name.includes(filter.name)).map((n) => this.view(n));
  }

  async inspect(ref: string): Promise<Record<string, unknown>> {
    await this.stack.networks.ensurePredefined();
    return this.view(this.stack.networks.resolve(ref));
  }

  private view(n: NetworkRow): Record<string, unknown> {
    const containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> = {};
    for (const ep of this.stack.networks.t.endpointsOn(n.id)) {
      if (!ep.ip) continue;
      const row = this.e.rows.get(ep.container_id);
      containers[ep.container_id] = { Name: row?.name ?? '', EndpointID: endpointId(n.id, ep.container_id), MacAddress: ep.mac ?? '', IPv4Address: `${ep.ip}/${n.subnet.split('/')[1]}`, IPv6Address: '' };
    }
    return networkView(n, containers);
  }

  async remove(ref: string): Promise<string> {
    // rows first: a container whose process ended counts as stopped
    for (const r of this.e.rows.list(true)) await this.e.fresh(r);
    const n = this.stack.networks.resolve(ref);
    const id = this.stack.networks.remove(ref, (c) => this.running(c)).id;
    this.event('destroy', id, { name: n.name, type: n.driver });
    return id;
  }

  async prune(): Promise<string[]> {
    await this.stack.networks.ensurePredefined();
    const byName = new Map(this.stack.networks.list().map((n) => [n.name, n]));
    const names = await this.stack.networks.prune();
    for (const name of names) {
      const n = byName.get(name);
      if (n) this.event('destroy', n.id, { name, type: n.driver });
    }
    return names;
  }

  /** docker's network events: Actor = the network, with its name, type and the container. */
  private event(action: string, id: string, attrs: Record<string, string>): void {
    addEvent(this.e.rows.db, 'network', action, id, attrs);
  }

  /** docker network connect NET CTR [--alias A] [--ip IP]. */
  async connect(netRef: string, ctrRef: string, e: EndpointConfig = {}): Promise<void> {
    const row = await this.e.fresh(this.e.rows.resolve(ctrRef));
    const { opts, spec } = this.e.stored(row);
    if (row.status === 'removing') throw new HullError('FAILED_PRECONDITION', `container ${row.name} is being removed`);
    await this.stack.connect(netRef, { id: row.id, name: row.name, wall: row.isolation, hostname: spec.hostname, mode: opts.network ?? 'bridge', running: row.status === 'running' }, e);
    const n = this.stack.networks.resolve(netRef);
    this.event('connect', n.id, { container: row.id, name: n.name, type: n.driver });
  }

  /** docker network disconnect NET CTR. */
  async disconnect(netRef: string, ctrRef: string): Promise<void> {
    const row = await this.e.fresh(this.e.rows.resolve(ctrRef));
    const n = this.stack.networks.resolve(netRef);
    if ((PREDEFINED as readonly string[]).includes(n.name) && n.driver !== 'bridge') throw invalid(`container cannot be disconnected from the ${n.name} network`);
    await this.stack.disconnect(netRef, { id: row.id, name: row.name, wall: row.isolation, hostname: '', running: row.status === 'running' });
    this.event('disconnect', n.id, { container: row.id, name: n.name, type: n.driver });
  }

  /** hull port CTR [PORT[/PROTO]]: where each published port went. */
  async port(ctrRef: string, which?: string): Promise<PortBinding[]> {
    const row = await this.e.fresh(this.e.rows.resolve(ctrRef));
    let b = this.stack.bindings(row.id);
    if (which !== undefined) {
      const s = parsePublish(which);
      b = b.filter((x) => x.containerPort === s.containerStart && x.proto === s.proto);
      if (b.length === 0) throw new HullError('NOT_FOUND', `No public port '${s.containerStart}/${s.proto}' published for ${row.name}`);
    }
    return b;
  }

  /** The docker-shaped network facts of one container (for inspect and ps). */
  containerView(row: ContainerRow, stored: StoredSpec): ContainerNetView {
    const { opts, spec } = stored;
    const req = netRequest(opts, spec.image.config);
    const mode = parseMode(req.mode);
    const exposed = exposedKeys([...req.exposed, ...req.publish.map((p) => {
      const s = parsePublish(p);
      return `${s.containerStart}${s.containerEnd !== s.containerStart ? `-${s.containerEnd}` : ''}/${s.proto}`;
    })]);
    const bound = this.stack.bindings(row.id);
    // docker shows ports (exposed or published) only while the container runs
    const live = row.status === 'running' || row.status === 'paused';
    const shown = live ? exposed : [];
    const networks: Record<string, unknown> = {};
    let primary: Record<string, unknown> = { EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '' };
    for (const { ep, net } of this.stack.endpoints(row.id)) {
      const name = net?.name ?? ep.network_id;
      const user = net ? net.name !== 'bridge' : true;
      const aliases = JSON.parse(ep.aliases_json) as string[];
      const v = {
        IPAMConfig: ep.static_ip ? { IPv4Address: ep.static_ip } : null,
        Links: null,
        // docker-compose checks the short id here to tell a container is on the network already
        Aliases: user ? [...aliases, row.id.slice(0, 12)] : null,
        MacAddress: ep.mac ?? '',
        DriverOpts: null,
        NetworkID: ep.network_id,
        EndpointID: ep.ip ? endpointId(ep.network_id, row.id) : '',
        Gateway: ep.ip && net ? net.gateway : '',
        IPAddress: ep.ip ?? '',
        IPPrefixLen: ep.ip && net ? Number(net.subnet.split('/')[1]) : 0,
        IPv6Gateway: '',
        GlobalIPv6Address: '',
        GlobalIPv6PrefixLen: 0,
        DNSNames: user && ep.ip ? [row.name, row.id.slice(0, 12), ...aliases] : null,
      };
      networks[name] = v;
      if (ep.idx === 0) primary = { EndpointID: v.EndpointID, Gateway: v.Gateway, IPAddress: v.IPAddress, IPPrefixLen: v.IPPrefixLen, MacAddress: v.MacAddress };
    }
    if (mode.kind === 'none' || mode.kind === 'host') networks[mode.kind] = { IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', NetworkID: this.stack.networks.t.networkByName(mode.kind)?.id ?? '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null };
    const sandbox = this.stack.sandboxPath(row.id);
    const mainName = mode.kind === 'network' ? this.stack.networks.t.findNetwork(mode.name)?.name ?? mode.name : mode.kind === 'container' ? `container:${mode.ref}` : mode.kind;
    return {
      NetworkSettings: {
        Bridge: '',
        SandboxID: sandbox ? row.id : '',
        SandboxKey: sandbox ?? '',
        HairpinMode: false,
        LinkLocalIPv6Address: '',
        LinkLocalIPv6PrefixLen: 0,
        Ports: portsView(shown, bound),
        SecondaryIPAddresses: null,
        SecondaryIPv6Addresses: null,
        ...primary,
        IPv6Gateway: '',
        GlobalIPv6Address: '',
        GlobalIPv6PrefixLen: 0,
        Networks: networks,
      },
      HostConfig: {
        NetworkMode: mainName,
        PortBindings: portBindingsView(req.publish.map(parsePublish)),
        PublishAllPorts: req.publishAll,
        Dns: req.dns,
        DnsSearch: req.dnsSearch,
        DnsOptions: req.dnsOptions,
        ExtraHosts: req.extraHosts.length ? req.extraHosts : null,
      },
      ExposedPorts: Object.fromEntries(exposed.map((k) => [k, {}])),
      Ports: [
        ...bound.map((b) => ({ IP: b.hostIp || '0.0.0.0', PrivatePort: b.containerPort, PublicPort: b.hostPort, Type: b.proto })),
        ...shown.filter((k) => !bound.some((b) => `${b.containerPort}/${b.proto}` === k)).map((k) => ({ PrivatePort: Number(k.split('/')[0]), Type: k.split('/')[1]! })),
      ],
      PortsText: portsText(shown, bound),
      MacAddress: opts.macAddress ?? '',
    };
  }
}

/** A stable endpoint id for a container on a network (docker's are random; nothing relies on them). */
export function endpointId(networkId: string, containerId: string): string {
  let h = '';
  for (let i = 0; i < 64; i++) h += ((parseInt(networkId[i] ?? '0', 16) ^ parseInt(containerId[63 - i] ?? '0', 16)) & 15).toString(16);
  return h;
}
