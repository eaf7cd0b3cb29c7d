/**
 * Published host ports are held, the way podman holds them: hull binds each one (a listening TCP
 * socket, a bound UDP socket) before the firewall forwards it, so nothing else on the machine (a
 * host process, podman, another hull root) can take it, and a port that is taken already is
 * refused before anything is set up. The descriptors go to the instance's monitor (conmon, or the
 * VM's monitor shell), which holds them as long as the instance runs; the kernel frees them when
 * the monitor ends, so a port is never left held. Connections never reach these sockets: the
 * firewall rewrites them to the instance first.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { conflict } from '../errors.js';
import type { Proto } from './ports.js';

export interface HeldPort {
  proto: Proto;
  hostIp: string;
  port: number;
  /** The socket's descriptor in this process (to hand to a monitor). */
  fd: number;
  close(): void;
}

/** A socket's descriptor: net.Server's handle, or dgram's state (no deprecated getter touched). */
function fdOf(x: object): number {
  const h = (x as { _handle?: { fd?: number } })._handle;
  if (h && typeof h.fd === 'number') return h.fd;
  for (const s of Object.getOwnPropertySymbols(x)) {
    const v = (x as Record<symbol, { handle?: { fd?: number } } | undefined>)[s];
    if (v && typeof v === 'object' && v.handle && typeof v.handle.fd === 'number') return v.handle.fd;
  }
  return -1;
}

function taken(hostIp: string, port: number, proto: Proto, e?: unknown): Error {
  return conflict(`Bind for ${hostIp || '0.0.0.0'}:${port}${proto === 'udp' ? '/udp' : ''} failed: port is already allocated`, e);
}

/** Binds `hostIp`:`port` (port 0: a free one the kernel picks). CONFLICT when it is taken. */
export function holdPort(proto: Proto, hostIp: string, port: number): Promise<HeldPort> {
  const host = hostIp || '0.0.0.0';
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const s = net.createServer();
      s.once('error', (e) => reject(taken(hostIp, port, proto, e)));
      s.listen({ port, host, exclusive: true, backlog: 1 }, () => {
        s.unref();
        const p = (s.address() as net.AddressInfo).port;
        resolve({ proto, hostIp, port: p, fd: fdOf(s), close: () => s.close() });
      });
    } else {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      s.once('error', (e) => {
        s.close();
        reject(taken(hostIp, port, proto, e));
      });
      s.bind({ port, address: host, exclusive: true }, () => {
        s.unref();
        resolve({ proto, hostIp, port: s.address().port, fd: fdOf(s), close: () => s.close() });
      });
    }
  });
}

/** Holds a free port in [lo, hi] (both given) or any free port. CONFLICT when the range is full. */
export async function holdFreePort(proto: Proto, hostIp: string, lo?: number, hi?: number): Promise<HeldPort> {
  if (lo === undefined || hi === undefined) return holdPort(proto, hostIp, 0);
  for (let p = lo; p <= hi; p++) {
    try {
      return await holdPort(proto, hostIp, p);
    } catch {
      /* next */
    }
  }
  throw conflict(`Bind for ${hostIp || '0.0.0.0'}:${lo}-${hi}${proto === 'udp' ? '/udp' : ''} failed: every port of the range is allocated`);
}
