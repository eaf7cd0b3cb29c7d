/**
 * `hull network create|ls|inspect|rm|prune|connect|disconnect` and `hull port`: thin adapters
 * over the engine's network service, with docker's flags and output.
 */
import { invalid } from '../errors.js';
import { filterNetworks, parseFilterFlags } from '../engine/filters.js';
import type { Engine } from '../engine/engine.js';
import { flagBool, flagList, flagStr, type Parsed } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { confirm, formatTemplate, inspectAll } from './containers.js';
import { table } from './output.js';

async function service(ctx: CliContext) {
  const { Engine } = await import('../engine/engine.js');
  return (Engine.open(ctx.root) as Engine).networks();
}

/** KEY=VALUE list -> object ('--label a=b', '-o mtu=1400'). */
function kv(list: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const x of list) {
    const i = x.indexOf('=');
    if (i <= 0) throw invalid(`invalid ${flag} ${JSON.stringify(x)}: want KEY=VALUE`);
    out[x.slice(0, i)] = x.slice(i + 1);
  }
  return out;
}

function one(p: Parsed, n: string): string | undefined {
  const l = flagList(p, n);
  if (l.length > 1) throw invalid(`--${n} given ${l.length} times: hull networks have one IPv4 subnet`);
  return l[0];
}

export const commands: CommandDef[] = [
  {
    name: 'network create',
    usage: 'network create [OPTIONS] NETWORK',
    summary: 'Create a network (a bridge with its own subnet, NAT out and names by DNS)',
    flags: [
      { name: 'driver', short: 'd', type: 'string', help: 'Driver to manage the network (bridge)' },
      { name: 'subnet', type: 'list', help: 'Subnet in CIDR format (default: a free /24 of 10.214.0.0/15)' },
      { name: 'gateway', type: 'list', help: 'IPv4 gateway of the subnet (default: its first address)' },
      { name: 'ip-range', type: 'list', help: 'Allocate container addresses from a sub-range' },
      { name: 'internal', type: 'bool', help: 'Restrict external access to the network' },
      { name: 'label', type: 'list', help: 'Set metadata on a network' },
      { name: 'opt', short: 'o', type: 'list', help: 'Driver options (com.docker.network.driver.mtu=1400)' },
      { name: 'attachable', type: 'bool', help: 'Accepted for docker compatibility', hidden: true },
      { name: 'ipv6', type: 'bool', help: 'Not supported', hidden: true },
    ],
    minArgs: 1,
    maxArgs: 1,
    async run(ctx, p) {
      if (flagBool(p, 'ipv6')) throw invalid('--ipv6: hull networks are IPv4 only');
      const r = await (await service(ctx)).create({
        name: p.args[0]!, driver: flagStr(p, 'driver'), subnet: one(p, 'subnet'), gateway: one(p, 'gateway'), ipRange: one(p, 'ip-range'),
        internal: flagBool(p, 'internal'), labels: kv(flagList(p, 'label'), '--label'), options: kv(flagList(p, 'opt'), '--opt'),
      });
      ctx.stdout.write(`${r.id}\n`);
      return 0;
    },
  },
  {
    name: 'network ls',
    usage: 'network ls [OPTIONS]',
    summary: 'List networks',
    flags: [
      { name: 'quiet', short: 'q', type: 'bool', help: 'Only display network IDs' },
      { name: 'no-trunc', type: 'bool', help: 'Do not truncate the output' },
      { name: 'filter', short: 'f', type: 'list', help: 'Filter output: name, id, driver, label, type=builtin|custom, dangling (KEY=VALUE)' },
      { name: 'format', type: 'string', help: "'json' or a Go-style template ({{.Name}} {{.ID}})" },
    ],
    maxArgs: 0,
    async run(ctx, p) {
      const list = filterNetworks(await (await service(ctx)).list(), parseFilterFlags(flagList(p, 'filter')));
      const trunc = !flagBool(p, 'no-trunc');
      const rows = list.map((n) => ({ ID: trunc ? String(n.Id).slice(0, 12) : String(n.Id), Name: String(n.Name), Driver: String(n.Driver), Scope: 'local', Internal: String(n.Internal) }));
      if (flagBool(p, 'quiet')) for (const r of rows) ctx.stdout.write(`${r.ID}\n`);
      else if (flagStr(p, 'format') === 'json') for (const r of rows) ctx.stdout.write(`${JSON.stringify(r)}\n`);
      else if (flagStr(p, 'format')) for (const r of rows) ctx.stdout.write(`${formatTemplate(flagStr(p, 'format')!, r)}\n`);
      else ctx.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], rows.map((r) => [r.ID, r.Name, r.Driver, r.Scope])));
      return 0;
    },
  },
  {
    name: 'network inspect',
    usage: 'network inspect [OPTIONS] NETWORK [NETWORK...]',
    summary: 'Display detailed information on one or more networks',
    flags: [{ name: 'format', short: 'f', type: 'string', help: 'Format the output using a Go-style template' }],
    minArgs: 1,
    async run(ctx, p) {
      const s = await service(ctx);
      return inspectAll(ctx, p.args, (ref) => s.inspect(ref), flagStr(p, 'format'), 'Error response from daemon: ');
    },
  },
  {
    name: 'network rm',
    usage: 'network rm NETWORK [NETWORK...]',
    summary: 'Remove one or more networks',
    flags: [{ name: 'force', short: 'f', type: 'bool', help: 'Do not error if the network does not exist' }],
    minArgs: 1,
    async run(ctx, p) {
      const s = await service(ctx);
      let rc = 0;
      for (const ref of p.args) {
        try {
          await s.remove(ref);
          ctx.stdout.write(`${ref}\n`);
        } catch (e) {
          if (flagBool(p, 'force') && (e as { code?: string }).code === 'NOT_FOUND') continue;
          ctx.stderr.write(`hull: Error response from daemon: ${(e as Error).message}\n`);
          rc = 1;
        }
      }
      return rc;
    },
  },
  {
    name: 'network prune',
    usage: 'network prune [OPTIONS]',
    summary: 'Remove all networks no container is on',
    flags: [{ name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' }],
    maxArgs: 0,
    async run(ctx, p) {
      if (!flagBool(p, 'force') && !(await confirm(ctx, 'WARNING! This will remove all custom networks not used by at least one container.'))) return 0;
      const names = await (await service(ctx)).prune();
      if (names.length) ctx.stdout.write(`Deleted Networks:\n${names.map((n) => `${n}\n`).join('')}`);
      return 0;
    },
  },
  {
    name: 'network connect',
    usage: 'network connect [OPTIONS] NETWORK CONTAINER',
    summary: 'Connect a container to a network (a VM: before it starts)',
    flags: [
      { name: 'alias', type: 'list', help: 'Add a network-scoped alias for the container' },
      { name: 'ip', type: 'string', help: 'IPv4 address on the network' },
    ],
    minArgs: 2,
    maxArgs: 2,
    async run(ctx, p) {
      const [net, ctr] = p.args as [string, string];
      const alias = flagList(p, 'alias');
      await (await service(ctx)).connect(net, ctr, { aliases: alias.length ? alias : undefined, ip: flagStr(p, 'ip') });
      return 0;
    },
  },
  {
    name: 'network disconnect',
    usage: 'network disconnect [OPTIONS] NETWORK CONTAINER',
    summary: 'Disconnect a container from a network (a VM: while it is stopped)',
    flags: [{ name: 'force', short: 'f', type: 'bool', help: 'Accepted for docker compatibility' }],
    minArgs: 2,
    maxArgs: 2,
    async run(ctx, p) {
      const [net, ctr] = p.args as [string, string];
      await (await service(ctx)).disconnect(net, ctr);
      return 0;
    },
  },
  {
    name: 'port',
    usage: 'port CONTAINER [PRIVATE_PORT[/PROTO]]',
    summary: "List port mappings or a specific mapping for the container",
    flags: [],
    minArgs: 1,
    maxArgs: 2,
    async run(ctx, p) {
      const b = await (await service(ctx)).port(p.args[0]!, p.args[1]);
      for (const x of b) ctx.stdout.write(p.args[1] ? `${x.hostIp || '0.0.0.0'}:${x.hostPort}\n` : `${x.containerPort}/${x.proto} -> ${x.hostIp || '0.0.0.0'}:${x.hostPort}\n`);
      return 0;
    },
  },
];
