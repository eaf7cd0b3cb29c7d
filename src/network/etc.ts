/**
 * /etc/hosts and /etc/resolv.conf of an instance, as docker writes them (pure). The same text
 * goes to a container (bind-mounted files) and to a VM (written by the guest agent).
 */
import { invalid } from '../errors.js';
import { isIpv4 } from './ipam.js';

export interface ExtraHost {
  name: string;
  /** An address, or 'host-gateway' until resolved. */
  ip: string;
}

/** --add-host NAME:IP (NAME=IP too, like docker 25+); IP may be 'host-gateway'. */
export function parseExtraHost(s: string): ExtraHost {
  const i = s.search(/[:=]/);
  const name = i > 0 ? s.slice(0, i) : '';
  const ip = i > 0 ? s.slice(i + 1) : '';
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name) || !(ip === 'host-gateway' || isIpv4(ip))) {
    throw invalid(`invalid argument ${JSON.stringify(s)} for "--add-host" flag: want NAME:IP (IPv4) or NAME:host-gateway`);
  }
  return { name, ip };
}

export function hostsFile(o: { hostname: string; ips: string[]; extraHosts: ExtraHost[]; hostNetwork?: string }): string {
  if (o.hostNetwork !== undefined) {
    // --network host: the host's own file, plus --add-host entries
    return `${o.hostNetwork.replace(/\n*$/, '\n')}${o.extraHosts.map((h) => `${h.ip}\t${h.name}\n`).join('')}`;
  }
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...o.extraHosts.map((h) => `${h.ip}\t${h.name}`),
  ];
  if (o.ips.length) for (const ip of o.ips) lines.push(`${ip}\t${o.hostname}`);
  else lines.push(`127.0.0.1\t${o.hostname}`);
  return `${lines.join('\n')}\n`;
}

export interface ResolvOptions {
  /** The network's DNS server (a user network's gateway), when names resolve there. */
  embedded?: string;
  /** --dns */
  dns: string[];
  /** --dns-search ('.' clears the list) */
  search: string[];
  /** --dns-option */
  options: string[];
  /** The host's /etc/resolv.conf. */
  host: string;
  /** --network host: the host's file as is (its loopback resolvers are reachable there). */
  hostNetwork?: boolean;
}

/** docker's fallback when the host has only loopback resolvers (127.0.0.53 and the like). */
export const FALLBACK_DNS = ['8.8.8.8', '8.8.4.4'];

function parse(text: string): { nameservers: string[]; search: string[]; options: string[] } {
  const r = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [k, ...v] = line.split(/\s+/);
    if (k === 'nameserver' && v[0]) r.nameservers.push(v[0]);
    else if (k === 'search' || k === 'domain') r.search = v;
    else if (k === 'options') r.options.push(...v);
  }
  return r;
}

const loopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

export function resolvConf(o: ResolvOptions): string {
  const host = parse(o.host);
  for (const d of o.dns) if (!isIpv4(d)) throw invalid(`invalid --dns ${JSON.stringify(d)}: want an IPv4 address`);
  let servers: string[];
  if (o.embedded) servers = [o.embedded];
  else if (o.dns.length) servers = o.dns;
  else if (o.hostNetwork) servers = host.nameservers;
  else {
    // a host stub resolver on 127.0.0.53 cannot be reached from another network namespace
    servers = host.nameservers.filter((s) => !loopback(s) && !s.includes(':'));
    if (servers.length === 0) servers = FALLBACK_DNS;
  }
  const search = o.search.length ? (o.search.length === 1 && o.search[0] === '.' ? [] : o.search) : host.search;
  const options = o.options.length ? o.options : o.embedded ? ['ndots:0'] : host.options;
  const lines: string[] = [];
  if (search.length) lines.push(`search ${search.join(' ')}`);
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
