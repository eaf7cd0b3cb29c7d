/**
 * The root's firewall: one nftables table (`ip hull_<root tag>`) holding everything hull's
 * networks need beyond the bridge plugin's wiring:
 *
 *  - published ports: DNAT of local destinations (PREROUTING for other hosts and containers,
 *    OUTPUT for the host itself, 127.0.0.1 included);
 *  - masquerade: traffic leaving a non-internal network, connections from 127.0.0.1 to a
 *    published port (the bridge has route_localnet on), and hairpin (a container reaching a
 *    published port through the host's address, DNATed back onto its own bridge);
 *  - isolation: nothing is forwarded between one of the root's bridges and any other hull
 *    bridge (any root's: they share the `hull` prefix), nor into or out of an internal network;
 *    DNATed connections are allowed.
 *
 * Its rules are fixed and read sets and maps, so a change is a few element statements in one
 * `nft -f` transaction; the store stays the truth and repairScript rebuilds the elements from it.
 * Base chains of this table coexist with iptables-nft's and other tables' chains: a drop here
 * drops, an accept here lets the packet on to the next table's chains.
 */
import { spawn } from 'node:child_process';
import { HullError } from '../errors.js';
import { BRIDGE_PREFIX } from './names.js';

export interface FirewallNetwork {
  bridge: string;
  subnet: string;
  internal: boolean;
  /** The gateway, when the network has names (its DNS server answers only its own bridge). */
  dns?: string;
}

export interface FirewallPort {
  proto: 'tcp' | 'udp';
  /** '' = every local address. */
  hostIp: string;
  hostPort: number;
  ip: string;
  port: number;
}

export interface FirewallState {
  /** Networks with at least one endpoint set up (their bridges exist). */
  networks: FirewallNetwork[];
  ports: FirewallPort[];
}

const q = (s: string) => `"${s}"`;

/**
 * The table (pure). Its rules never change: they read sets and maps, and only elements are
 * added and deleted as networks come and go (a commit that deletes anything waits for an RCU
 * grace period, ~15 ms here; adding does not).
 *   bridges   the root's bridges that are up     self      (bridge . bridge) pairs
 *   internal  bridges of internal networks       subnets   subnets that are NATed out
 *   ports     (proto . port) -> (address . port)  ipports   (host address . proto . port) -> ...
 *   dnsips    gateways with a DNS server         dnspairs  (gateway . its bridge)
 */
export function tableScript(table: string): string {
  return [
    `create table ip ${table}`,
    `table ip ${table} {`,
    '  set bridges { type ifname; }',
    '  set self { type ifname . ifname; }',
    '  set internal { type ifname; }',
    '  set subnets { type ipv4_addr; flags interval; }',
    '  map ports { type inet_proto . inet_service : ipv4_addr . inet_service; }',
    '  map ipports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }',
    '  set dnsips { type ipv4_addr; }',
    '  set dnspairs { type ipv4_addr . ifname; }',
    ...['prerouting', 'output'].flatMap((c) => [
      `  chain ${c} { type nat hook ${c} priority ${c === 'output' ? '-100' : 'dstnat'}; policy accept;`,
      '    fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ipports',
      '    fib daddr type local dnat ip to meta l4proto . th dport map @ports',
      '  }',
    ]),
    '  chain postrouting { type nat hook postrouting priority srcnat; policy accept;',
    '    ip saddr 127.0.0.0/8 oifname @bridges masquerade',
    // hairpin: a DNATed connection from one of the root's subnets back onto its bridges (there is
    // no input interface at postrouting for it: match by addresses)
    '    oifname @bridges ip saddr @subnets ct status dnat masquerade',
    `    ip saddr @subnets oifname != ${q(`${BRIDGE_PREFIX}*`)} masquerade`,
    '  }',
    '  chain forward { type filter hook forward priority filter; policy accept;',
    '    ct status dnat accept',
    '    iifname @internal iifname . oifname != @self drop',
    '    oifname @internal iifname . oifname != @self drop',
    `    iifname @bridges oifname ${q(`${BRIDGE_PREFIX}*`)} iifname . oifname != @self drop`,
    `    oifname @bridges iifname ${q(`${BRIDGE_PREFIX}*`)} iifname . oifname != @self drop`,
    '  }',
    // a network's DNS server answers the containers of that network only (aardvark-dns would
    // answer any asker with the names of the network it listens on)
    '  chain input { type filter hook input priority filter; policy accept;',
    '    iifname != "lo" meta l4proto { tcp, udp } th dport 53 ip daddr @dnsips ip daddr . iifname != @dnspairs drop',
    '  }',
    '}',
  ].join('\n');
}

/** Element statements for `state` (pure): 'add' when it comes up, 'delete' when it goes. */
export function elementsScript(table: string, op: 'add' | 'delete', state: FirewallState): string {
  const out: string[] = [];
  const el = (set: string, v: string) => out.push(`${op} element ip ${table} ${set} { ${v} }`);
  for (const n of state.networks) {
    el('bridges', q(n.bridge));
    el('self', `${q(n.bridge)} . ${q(n.bridge)}`);
    if (n.internal) el('internal', q(n.bridge));
    else el('subnets', n.subnet);
    if (n.dns) {
      el('dnsips', n.dns);
      el('dnspairs', `${n.dns} . ${q(n.bridge)}`);
    }
  }
  for (const p of state.ports) {
    if (p.hostIp) el('ipports', `${p.hostIp} . ${p.proto} . ${p.hostPort} : ${p.ip} . ${p.port}`);
    else el('ports', `${p.proto} . ${p.hostPort} : ${p.ip} . ${p.port}`);
  }
  return out.join('\n');
}

/** Makes the table hold exactly `state`, whatever it held (pure): the repair path, made anew. */
export function repairScript(table: string, state: FirewallState): string {
  return [deleteTableScript(table).trimEnd(), tableScript(table), elementsScript(table, 'add', state), ''].join('\n');
}

/** Deletes the table (idempotent). */
export function deleteTableScript(table: string): string {
  return `add table ip ${table}\ndelete table ip ${table}\n`;
}

/** Applies a script with `nft -f -` (one transaction: all of it or nothing). */
export function applyRuleset(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run nft: ${e.message}`, { cause: e, hint: 'apt-get install nftables' })));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('INTERNAL', `nft failed to apply hull's firewall rules: ${err.trim() || `exit ${code}`}`))));
    c.stdin.end(script);
  });
}
