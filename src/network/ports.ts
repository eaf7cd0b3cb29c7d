/**
 * Published ports, docker's way (pure): `-p [ip:][hostPort[-end]:]containerPort[-end][/proto]`,
 * `-P` for the image's EXPOSEd ports, and the docker shapes that describe them
 * (HostConfig.PortBindings, NetworkSettings.Ports, ps' PORTS column).
 */
import { invalid } from '../errors.js';
import { isIpv4 } from './ipam.js';

export type Proto = 'tcp' | 'udp';

/** One -p as asked: host side 0 means "a free port chosen at start". */
export interface PortSpec {
  /** '' = every address of the host (0.0.0.0). */
  hostIp: string;
  hostStart: number;
  hostEnd: number;
  containerStart: number;
  containerEnd: number;
  proto: Proto;
}

/** One container port mapped to one host port (what is set up while the container runs). */
export interface PortBinding {
  proto: Proto;
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

function portRange(s: string, what: string, spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw invalid(`invalid ${what} in -p ${JSON.stringify(spec)}: ${JSON.stringify(s)}`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a < 1 || b > 65535 || b < a) throw invalid(`invalid ${what} in -p ${JSON.stringify(spec)}: ${s} (ports are 1-65535, ranges low-high)`);
  return [a, b];
}

/** Parses one -p value. INVALID_ARGUMENT naming the value when malformed. */
export function parsePublish(spec: string): PortSpec {
  let rest = spec.trim();
  let proto: Proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw invalid(`invalid protocol in -p ${JSON.stringify(spec)}: ${JSON.stringify(p)} (tcp or udp)`);
    proto = p;
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  if (rest.startsWith('[')) throw invalid(`invalid -p ${JSON.stringify(spec)}: IPv6 host addresses are not supported`);
  const parts = rest.split(':');
  if (parts.length > 3 || parts.some((x, i) => x === '' && i === parts.length - 1)) throw invalid(`invalid -p ${JSON.stringify(spec)}: want [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`);
  let hostPart = '';
  let ctrPart: string;
  if (parts.length === 3) {
    [hostIp, hostPart, ctrPart] = parts as [string, string, string];
    if (!isIpv4(hostIp)) throw invalid(`invalid IP address in -p ${JSON.stringify(spec)}: ${JSON.stringify(hostIp)}`);
  } else if (parts.length === 2) {
    [hostPart, ctrPart] = parts as [string, string];
  } else ctrPart = parts[0]!;
  if (hostIp === '0.0.0.0') hostIp = '';
  const [cs, ce] = portRange(ctrPart, 'container port', spec);
  let hs = 0;
  let he = 0;
  if (hostPart !== '') {
    [hs, he] = portRange(hostPart, 'host port', spec);
    // docker: a host range for one container port means "one free port of that range"
    if (he - hs !== ce - cs && ce !== cs) throw invalid(`invalid -p ${JSON.stringify(spec)}: the host range ${hostPart} and the container range ${ctrPart} differ in size`);
  }
  return { hostIp, hostStart: hs, hostEnd: he, containerStart: cs, containerEnd: ce, proto };
}

/** The image's ExposedPorts keys ('80/tcp', '53/udp', '8000-8002/tcp') as -p specs with free host ports (-P). */
export function publishAllSpecs(exposed: string[]): PortSpec[] {
  return exposed.map((k) => {
    const s = parsePublish(k);
    return { ...s, hostStart: 0, hostEnd: 0 };
  });
}

/** docker's key for a container port: '80/tcp'. */
export const portKey = (port: number, proto: Proto) => `${port}/${proto}`;

/** Normalizes an ExposedPorts / --expose entry ('80', '80/udp', '8000-8001') to keys. */
export function exposedKeys(entries: string[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const s = parsePublish(e);
    for (let p = s.containerStart; p <= s.containerEnd; p++) out.push(portKey(p, s.proto));
  }
  return [...new Set(out)];
}

/**
 * Expands specs into bindings, asking `pick` for a host port where the spec leaves it open
 * (hostStart 0: any free port; a host range for one container port: a free one in the range).
 */
export async function expandSpecs(specs: PortSpec[], pick: (proto: Proto, hostIp: string, lo?: number, hi?: number) => Promise<number>): Promise<PortBinding[]> {
  const out: PortBinding[] = [];
  for (const s of specs) {
    const n = s.containerEnd - s.containerStart + 1;
    for (let i = 0; i < n; i++) {
      const containerPort = s.containerStart + i;
      let hostPort: number;
      if (s.hostStart === 0) hostPort = await pick(s.proto, s.hostIp);
      else if (s.hostEnd - s.hostStart + 1 === n) hostPort = s.hostStart + i;
      else hostPort = await pick(s.proto, s.hostIp, s.hostStart, s.hostEnd);
      out.push({ proto: s.proto, hostIp: s.hostIp, hostPort, containerPort });
    }
  }
  // the same host port twice in one container (e.g. -p 8080:80 -p 8080:81)
  out.forEach((a, i) => {
    if (out.slice(0, i).some((b) => clash(a, b))) throw invalid(`host port ${a.hostPort}/${a.proto} is published twice`);
  });
  return out;
}

/** Two bindings of one host port clash when their addresses overlap ('' is every address). */
export function clash(a: { proto: Proto; hostIp: string; hostPort: number }, b: { proto: Proto; hostIp: string; hostPort: number }): boolean {
  return a.proto === b.proto && a.hostPort === b.hostPort && (a.hostIp === b.hostIp || a.hostIp === '' || b.hostIp === '');
}

/** HostConfig.PortBindings as docker shapes it (the request: HostPort '' when left open). */
export function portBindingsView(specs: PortSpec[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const s of specs) {
    const n = s.containerEnd - s.containerStart + 1;
    for (let i = 0; i < n; i++) {
      const hostPort = s.hostStart === 0 ? '' : s.hostEnd - s.hostStart + 1 === n ? String(s.hostStart + i) : `${s.hostStart}-${s.hostEnd}`;
      (out[portKey(s.containerStart + i, s.proto)] ??= []).push({ HostIp: s.hostIp, HostPort: hostPort });
    }
  }
  return out;
}

/** NetworkSettings.Ports: every exposed or published port, with where it went (null: not published). */
export function portsView(exposed: string[], bound: PortBinding[]): Record<string, { HostIp: string; HostPort: string }[] | null> {
  const out: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const k of exposed) out[k] = null;
  for (const b of bound) {
    const k = portKey(b.containerPort, b.proto);
    (out[k] ??= []).push({ HostIp: b.hostIp || '0.0.0.0', HostPort: String(b.hostPort) });
  }
  return out;
}

/** docker ps PORTS: '0.0.0.0:8080->80/tcp, 53/udp'. */
export function portsText(exposed: string[], bound: PortBinding[]): string {
  const parts: string[] = [];
  const boundKeys = new Set(bound.map((b) => portKey(b.containerPort, b.proto)));
  for (const b of bound) parts.push(`${b.hostIp || '0.0.0.0'}:${b.hostPort}->${portKey(b.containerPort, b.proto)}`);
  for (const k of exposed) if (!boundKeys.has(k)) parts.push(k);
  return parts.join(', ');
}
