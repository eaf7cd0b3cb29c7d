/**
 * `hull volume create|ls|inspect|rm|prune`: thin adapters over the engine's volume store, with
 * docker's flags and output.
 */
import { invalid } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { filterVolumes, parseFilterFlags, pruneLabelMatch, checkKeys } from '../engine/filters.js';
import { volumeView, type VolumeStore } from '../volumes/store.js';
import { flagBool, flagList, flagStr } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { confirm, formatTemplate, inspectAll, labelsFromFlags } from './containers.js';
import { humanSize, table } from './output.js';

async function store(ctx: CliContext): Promise<VolumeStore> {
  const { Engine } = await import('../engine/engine.js');
  return (Engine.open(ctx.root) as Engine).volumes;
}

export const commands: CommandDef[] = [
  {
    name: 'volume create',
    usage: 'volume create [OPTIONS] [VOLUME]',
    summary: 'Create a volume (a directory under the hull root; both walls mount it)',
    flags: [
      { name: 'driver', short: 'd', type: 'string', help: 'Specify volume driver name (local)' },
      { name: 'label', type: 'list', help: 'Set metadata for a volume' },
      { name: 'opt', short: 'o', type: 'list', help: 'Driver options (the local driver here takes none)' },
      { name: 'name', type: 'string', help: 'Specify volume name', hidden: true },
    ],
    maxArgs: 1,
    async run(ctx, p) {
      const name = p.args[0] ?? flagStr(p, 'name');
      if (p.args[0] && flagStr(p, 'name') && p.args[0] !== flagStr(p, 'name')) throw invalid(`conflicting options: either specify --name or provide positional arg, not both`);
      const opts: Record<string, string> = {};
      for (const o of flagList(p, 'opt')) {
        const i = o.indexOf('=');
        if (i <= 0) throw invalid(`invalid --opt ${JSON.stringify(o)}: want KEY=VALUE`);
        opts[o.slice(0, i)] = o.slice(i + 1);
      }
      const s = await store(ctx);
      const { row } = s.create({ name, driver: flagStr(p, 'driver'), labels: labelsFromFlags(flagList(p, 'label'), [], () => ''), options: opts });
      ctx.stdout.write(`${row.name}\n`);
      return 0;
    },
  },
  {
    name: 'volume ls',
    usage: 'volume ls [OPTIONS]',
    summary: 'List volumes',
    flags: [
      { name: 'quiet', short: 'q', type: 'bool', help: 'Only display volume names' },
      { name: 'filter', short: 'f', type: 'list', help: "Provide filter values (e.g. 'dangling=true', 'label=KEY[=VALUE]', 'name=PART', 'driver=local')" },
      { name: 'format', type: 'string', help: "'json' or a Go-style template ({{.Name}} {{.Driver}} {{.Mountpoint}})" },
    ],
    maxArgs: 0,
    async run(ctx, p) {
      const s = await store(ctx);
      const counts = s.refCounts();
      const rows = filterVolumes(s.list(), parseFilterFlags(flagList(p, 'filter')), (n) => counts.get(n) ?? 0);
      const views = rows.map((r) => {
        const v = volumeView(s, r);
        const labels = Object.entries(v.Labels as Record<string, string>).map(([k, x]) => `${k}=${x}`).join(',');
        return { Name: r.name, Driver: r.driver, Scope: 'local', Mountpoint: String(v.Mountpoint), Labels: labels, Links: String(counts.get(r.name) ?? 0) };
      });
      const fmt = flagStr(p, 'format');
      if (flagBool(p, 'quiet')) for (const v of views) ctx.stdout.write(`${v.Name}\n`);
      else if (fmt === 'json') for (const v of views) ctx.stdout.write(`${JSON.stringify(v)}\n`);
      else if (fmt && fmt !== 'table') for (const v of views) ctx.stdout.write(`${formatTemplate(fmt, v)}\n`);
      else ctx.stdout.write(table(['DRIVER', 'VOLUME NAME'], views.map((v) => [v.Driver, v.Name])));
      return 0;
    },
  },
  {
    name: 'volume inspect',
    usage: 'volume inspect [OPTIONS] VOLUME [VOLUME...]',
    summary: 'Display detailed information on one or more volumes',
    flags: [{ name: 'format', short: 'f', type: 'string', help: 'Format the output using a Go-style template ({{.Mountpoint}})' }],
    minArgs: 1,
    async run(ctx, p) {
      const s = await store(ctx);
      return inspectAll(ctx, p.args, async (name) => volumeView(s, s.resolve(name)), flagStr(p, 'format'), 'Error response from daemon: ');
    },
  },
  {
    name: 'volume rm',
    usage: 'volume rm [OPTIONS] VOLUME [VOLUME...]',
    summary: 'Remove one or more volumes (refused while a container uses one)',
    flags: [{ name: 'force', short: 'f', type: 'bool', help: 'Do not error if the volume does not exist' }],
    minArgs: 1,
    async run(ctx, p) {
      const s = await store(ctx);
      let rc = 0;
      for (const name of p.args) {
        try {
          s.remove(name, { force: flagBool(p, 'force') });
          ctx.stdout.write(`${name}\n`);
        } catch (e) {
          ctx.stderr.write(`hull: Error response from daemon: ${(e as Error).message}\n`);
          rc = 1;
        }
      }
      return rc;
    },
  },
  {
    name: 'volume prune',
    usage: 'volume prune [OPTIONS]',
    summary: 'Remove unused anonymous volumes (all unused ones with --all)',
    flags: [
      { name: 'all', short: 'a', type: 'bool', help: 'Remove all unused volumes, not just anonymous ones' },
      { name: 'filter', type: 'list', help: "Provide filter values (e.g. 'label=KEY=VALUE', 'label!=KEY')" },
      { name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' },
    ],
    maxArgs: 0,
    async run(ctx, p) {
      const f = parseFilterFlags(flagList(p, 'filter'));
      checkKeys(f, ['label', 'label!']);
      const all = flagBool(p, 'all');
      const warning = all ? 'WARNING! This will remove all local volumes not used by at least one container.' : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
      if (!flagBool(p, 'force') && !(await confirm(ctx, warning))) return 0;
      const match = pruneLabelMatch(f);
      const s = await store(ctx);
      const r = s.prune({ all, match: (row) => match(JSON.parse(row.labels_json) as Record<string, string>) });
      if (r.deleted.length) ctx.stdout.write(`Deleted Volumes:\n${r.deleted.map((n) => `${n}\n`).join('')}\n`);
      ctx.stdout.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      return 0;
    },
  },
];
