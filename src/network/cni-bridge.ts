/**
 * The bridge driver: the CNI `bridge` plugin from Debian's containernetworking-plugins
 * (/usr/lib/cni), with the `static` IPAM plugin carrying the address hull allocated. The plugin
 * makes the bridge when missing (with the gateway address), the veth pair, moves one end into the
 * namespace with the address, MAC, MTU and routes, and sets hairpin mode on the bridge port (a
 * container reaching itself through a published port). It runs with ipMasq off: NAT, ports and
 * isolation are the stack's nftables table (nft.ts), not the plugin's iptables chains.
 *
 * Teardown deletes the host side of the veth (which removes both ends at once) in the same step
 * that drops the namespace; for a static address and no ipMasq, that is all the plugin's DEL
 * would do, without a second plugin run.
 */
import { HullError } from '../errors.js';
import type { AttachRequest, AttachResult, NetworkDriver } from './driver.js';
import { run } from './netns.js';

export const CNI_PATHS = ['/usr/lib/cni', '/opt/cni/bin'];

/** The plugin configuration for one attach (pure). */
export function bridgeConf(r: AttachRequest): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: r.bridge,
    type: 'bridge',
    bridge: r.bridge,
    isGateway: true,
    ipMasq: false,
    hairpinMode: true,
    mtu: r.mtu,
    runtimeConfig: { mac: r.mac },
    ipam: {
      type: 'static',
      addresses: [{ address: `${r.ip}/${r.prefix}`, gateway: r.gateway }],
      routes: r.defaultRoute ? [{ dst: '0.0.0.0/0', gw: r.gateway }] : [],
    },
  };
}

/** The CNI_* environment of a plugin call (pure). */
export function cniEnv(command: 'ADD' | 'DEL', r: Pick<AttachRequest, 'containerId' | 'netns' | 'ifname'>, cniPath: string): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: r.containerId, CNI_NETNS: r.netns, CNI_IFNAME: r.ifname, CNI_PATH: cniPath };
}

interface CniResult {
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  code?: number;
  msg?: string;
  details?: string;
}

export function createBridgeDriver(cniPath: string): NetworkDriver {
  const plugin = `${cniPath}/bridge`;
  return {
    name: 'bridge',
    async attach(r: AttachRequest): Promise<AttachResult> {
      const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...cniEnv('ADD', r, cniPath) };
      let out: string;
      try {
        out = await runWithEnv([plugin], env, JSON.stringify(bridgeConf(r)));
      } catch (e) {
        throw new HullError('INTERNAL', `the CNI bridge plugin could not attach ${r.ifname} to ${r.bridge}: ${(e as Error).message}`, { cause: e });
      }
      const res = JSON.parse(out) as CniResult;
      const host = res.interfaces?.find((i) => !i.sandbox && i.name !== r.bridge);
      const ctr = res.interfaces?.find((i) => i.sandbox);
      if (!host) throw new HullError('INTERNAL', `the CNI bridge plugin reported no host veth for ${r.ifname}`);
      return { veth: host.name, mac: ctr?.mac ?? r.mac };
    },
    detachLinks(r) {
      return r.veth ? [r.veth] : [];
    },
  };
}

function runWithEnv(argv: string[], env: Record<string, string>, input: string): Promise<string> {
  // the plugin prints its error as JSON on stdout with a non-zero exit: keep its message
  return run(argv, 'CNI bridge ADD', input, env).catch((e: Error) => {
    const m = /\{[\s\S]*\}/.exec(e.message);
    if (m) {
      try {
        const j = JSON.parse(m[0]) as CniResult;
        if (j.msg) throw new Error(`${j.msg}${j.details ? `: ${j.details}` : ''}`);
      } catch (x) {
        if (x instanceof SyntaxError) throw e;
        throw x;
      }
    }
    throw e;
  });
}
