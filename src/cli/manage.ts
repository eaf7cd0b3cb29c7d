/** `hull top|pause|unpause|rename`: thin adapters over the engine, with docker's output. */
import type { Engine, UpdateOptions } from '../engine/engine.js';
import { invalid } from '../errors.js';
import type { CliContext, CommandDef } from './command.js';
import { flagBool, flagStr } from './args.js';
import { humanSize, table } from './output.js';

async function engineFor(ctx: CliContext): Promise<Engine> {
  const { Engine } = await import('../engine/engine.js');
  return Engine.open(ctx.root);
}

/** Run `fn` for each container named; failures are printed (docker's words) and make the exit code 1. */
async function each(ctx: CliContext, refs: string[], fn: (ref: string) => Promise<void>): Promise<number> {
  let rc = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
      ctx.stdout.write(`${ref}\n`);
    } catch (e) {
      ctx.stderr.write(`hull: Error response from daemon: ${(e as Error).message}\n`);
      rc = 1;
    }
  }
  return rc;
}

export const commands: CommandDef[] = [
  {
    name: 'top',
    usage: 'top CONTAINER [ps OPTIONS]',
    summary: "Display the running processes of a container (a VM's, as its guest lists them)",
    flags: [],
    stopAtPositional: true,
    minArgs: 1,
    async run(ctx, p) {
      const [ref, ...ps] = p.args;
      const r = await (await engineFor(ctx)).top(ref!, ps.length ? ps.join(' ') : undefined);
      ctx.stdout.write(table(r.Titles, r.Processes));
      return 0;
    },
  },
  {
    name: 'pause',
    usage: 'pause CONTAINER [CONTAINER...]',
    summary: 'Pause all processes within one or more containers (cgroup freezer; a VM: its vCPUs stopped)',
    flags: [],
    minArgs: 1,
    async run(ctx, p) {
      const e = await engineFor(ctx);
      return each(ctx, p.args, (ref) => e.pause(ref));
    },
  },
  {
    name: 'unpause',
    usage: 'unpause CONTAINER [CONTAINER...]',
    summary: 'Unpause all processes within one or more containers',
    flags: [],
    minArgs: 1,
    async run(ctx, p) {
      const e = await engineFor(ctx);
      return each(ctx, p.args, (ref) => e.unpause(ref));
    },
  },
  {
    name: 'update',
    usage: 'update [OPTIONS] CONTAINER [CONTAINER...]',
    summary: "Update containers' limits (a running one at once; a VM's memory and vCPUs at its next boot)",
    flags: [
      { name: 'memory', short: 'm', type: 'string', value: 'bytes', help: 'Memory limit (128m, 1g)' },
      { name: 'memory-swap', type: 'string', value: 'bytes', help: "Memory plus swap limit: '-1' for unlimited swap" },
      { name: 'cpus', type: 'string', value: 'decimal', help: 'Number of CPUs' },
      { name: 'pids-limit', type: 'string', value: 'int', help: 'Process limit (-1 for unlimited)' },
    ],
    minArgs: 1,
    async run(ctx, p) {
      const { parseBytes, parseCpus, parseIntFlag } = await import('../engine/units.js');
      const os = await import('node:os');
      const u: UpdateOptions = {};
      const m = flagStr(p, 'memory');
      if (m !== undefined) u.memoryBytes = parseBytes(m, '--memory');
      const sw = flagStr(p, 'memory-swap');
      if (sw !== undefined) u.memorySwapBytes = sw === '-1' ? -1 : parseBytes(sw, '--memory-swap');
      const c = flagStr(p, 'cpus');
      if (c !== undefined) u.nanoCpus = parseCpus(c, os.cpus().length);
      const pl = flagStr(p, 'pids-limit');
      if (pl !== undefined) u.pidsLimit = parseIntFlag(pl, '--pids-limit', -1);
      if (Object.keys(u).length === 0) throw invalid('you must provide one or more flags when using this command');
      const e = await engineFor(ctx);
      return each(ctx, p.args, (ref) => e.update(ref, u));
    },
  },
  {
    name: 'rename',
    usage: 'rename CONTAINER NEW_NAME',
    summary: 'Rename a container',
    flags: [],
    minArgs: 2,
    maxArgs: 2,
    async run(ctx, p) {
      await (await engineFor(ctx)).rename(p.args[0]!, p.args[1]!);
      return 0;
    },
  },
  {
    name: 'system df',
    usage: 'system df [OPTIONS]',
    summary: 'Show hull disk usage: images (layers once), containers (writable layers), volumes',
    flags: [
      { name: 'verbose', short: 'v', type: 'bool', help: 'Show detailed information on space usage' },
      { name: 'format', type: 'string', help: "'json' (one line per type)" },
    ],
    maxArgs: 0,
    async run(ctx, p) {
      const u = await (await engineFor(ctx)).diskUsage();
      const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');
      const usedImages = u.images.filter((i) => i.containers > 0);
      const imgReclaim = u.imagesReclaimable;
      const live = (s: string) => s === 'running' || s === 'paused';
      const ctrSize = u.containers.reduce((a, c) => a + c.sizeRw, 0);
      const ctrReclaim = u.containers.filter((c) => !live(c.summary.State)).reduce((a, c) => a + c.sizeRw, 0);
      const volSize = u.volumes.reduce((a, v) => a + v.size, 0);
      const volReclaim = u.volumes.filter((v) => v.refCount === 0).reduce((a, v) => a + v.size, 0);
      const rows = [
        { Type: 'Images', TotalCount: u.images.length, Active: usedImages.length, Size: humanSize(u.layersSize), Reclaimable: `${humanSize(imgReclaim)}${pct(imgReclaim, u.layersSize)}` },
        { Type: 'Containers', TotalCount: u.containers.length, Active: u.containers.filter((c) => live(c.summary.State)).length, Size: humanSize(ctrSize), Reclaimable: `${humanSize(ctrReclaim)}${pct(ctrReclaim, ctrSize)}` },
        { Type: 'Local Volumes', TotalCount: u.volumes.length, Active: u.volumes.filter((v) => v.refCount > 0).length, Size: humanSize(volSize), Reclaimable: `${humanSize(volReclaim)}${pct(volReclaim, volSize)}` },
        { Type: 'Build Cache', TotalCount: 0, Active: 0, Size: '0B', Reclaimable: '0B' },
      ];
      if (flagStr(p, 'format') === 'json') {
        for (const r of rows) ctx.stdout.write(`${JSON.stringify({ ...r, TotalCount: String(r.TotalCount), Active: String(r.Active) })}\n`);
        return 0;
      }
      ctx.stdout.write(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], rows.map((r) => [r.Type, String(r.TotalCount), String(r.Active), r.Size, r.Reclaimable])));
      if (flagBool(p, 'verbose')) {
        ctx.stdout.write('\nLocal Volumes space usage:\n\n');
        ctx.stdout.write(table(['VOLUME NAME', 'LINKS', 'SIZE'], u.volumes.map((v) => [v.row.name, String(v.refCount), humanSize(v.size)])));
        ctx.stdout.write('\nContainers space usage:\n\n');
        ctx.stdout.write(table(['CONTAINER ID', 'IMAGE', 'SIZE', 'STATUS', 'NAMES'], u.containers.map((c) => [c.summary.Id.slice(0, 12), c.summary.Image, humanSize(c.sizeRw), c.summary.Status, c.summary.Names[0]!.slice(1)])));
      }
      return 0;
    },
  },
];

