/**
 * What a container asks of the network (pure): the network mode, its place on each network, the
 * ports it publishes and its DNS and hosts settings, as stored with the container. Validated
 * here, where it enters the network stack.
 */
import { invalid } from '../errors.js';
import { parseExtraHost } from './etc.js';
import { isIpv4, parseMac } from './ipam.js';
import { exposedKeys, parsePublish, type PortSpec } from './ports.js';

export interface EndpointConfig {
  /** --network-alias (names on a user network, besides the container's name and short id). */
  aliases?: string[];
  /** --ip: a fixed address (user networks only). */
  ip?: string;
  /** --mac-address */
  mac?: string;
}

export interface NetRequest {
  /** 'bridge' (default), 'none', 'host', 'container:<name|id>', or a network's name or id. */
  mode: string;
  /** Place on the mode's network (when it is one). */
  primary: EndpointConfig;
  /** Further networks to be on from the start (the Engine API's EndpointsConfig). */
  more: Record<string, EndpointConfig>;
  /** -p values as given. */
  publish: string[];
  /** -P: every exposed port on a free host port. */
  publishAll: boolean;
  /** Exposed ports ('80/tcp'): the image's ExposedPorts plus --expose. */
  exposed: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
  /** --add-host NAME:IP | NAME:host-gateway */
  extraHosts: string[];
}

export type Mode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; ref: string }
  | { kind: 'network'; name: string };

export function parseMode(s: string | undefined): Mode {
  const m = s ?? 'bridge';
  if (m === 'none') return { kind: 'none' };
  if (m === 'host') return { kind: 'host' };
  if (m === '' || m === 'default' || m === 'bridge') return { kind: 'network', name: 'bridge' };
  if (m.startsWith('container:')) {
    const ref = m.slice('container:'.length);
    if (!ref) throw invalid('--network container: needs a container name or id');
    return { kind: 'container', ref };
  }
  return { kind: 'network', name: m };
}

const ALIAS = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,62})$/;

function checkEndpoint(e: EndpointConfig, where: string): void {
  for (const a of e.aliases ?? []) if (!ALIAS.test(a)) throw invalid(`invalid network alias ${JSON.stringify(a)}${where}`);
  if (e.ip !== undefined && !isIpv4(e.ip)) throw invalid(`invalid IPv4 address ${JSON.stringify(e.ip)}${where}`);
  if (e.mac !== undefined) parseMac(e.mac);
}

/** Checks everything that does not need the store. INVALID_ARGUMENT naming the flag. */
export function validateNetRequest(r: NetRequest, wall: 'container' | 'vm'): PortSpec[] {
  const mode = parseMode(r.mode);
  if (wall === 'vm' && mode.kind === 'container') throw invalid(`--network ${r.mode}: a VM has its own kernel and cannot share another container's network namespace`);
  const specs = r.publish.map(parsePublish);
  exposedKeys(r.exposed);
  if (mode.kind !== 'network') {
    if (specs.length || r.publishAll) {
      if (mode.kind === 'container') throw invalid('conflicting options: port publishing and the container type network mode');
      if (mode.kind === 'none') throw invalid('conflicting options: port publishing and --network none');
    }
    if (r.primary.aliases?.length || r.primary.ip !== undefined) throw invalid(`--network-alias and --ip need a user-defined network, not --network ${r.mode}`);
    if (Object.keys(r.more).length) throw invalid(`--network ${r.mode} cannot be combined with other networks`);
    if (mode.kind === 'container' && r.primary.mac !== undefined) throw invalid('conflicting options: --mac-address and the container type network mode');
    if (mode.kind === 'container' && (r.dns.length || r.extraHosts.length)) throw invalid('conflicting options: --dns / --add-host and the container type network mode');
  }
  checkEndpoint(r.primary, '');
  for (const [n, e] of Object.entries(r.more)) checkEndpoint(e, ` (network ${n})`);
  for (const h of r.extraHosts) parseExtraHost(h);
  for (const d of r.dns) if (!isIpv4(d)) throw invalid(`invalid --dns ${JSON.stringify(d)}: want an IPv4 address`);
  return specs;
}
