/** `hull events` (`hull system events`): docker's event stream on the terminal. */
import type { Engine } from '../engine/engine.js';
import { parseEventTime, type DockerEvent } from '../engine/events.js';
import { parseFilterFlags } from '../engine/filters.js';
import { flagList, flagStr } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { formatTemplate } from './containers.js';

/** docker's line: `2024-05-01T10:00:00.123456789Z container create ID (image=busybox, name=web)`. */
export function eventLine(e: DockerEvent): string {
  const ns = BigInt(e.timeNano);
  const iso = new Date(Number(ns / 1_000_000n)).toISOString().replace(/\.\d{3}Z$/, `.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`);
  const attrs = Object.keys(e.Actor.Attributes).sort().map((k) => `${k}=${e.Actor.Attributes[k]}`).join(', ');
  return `${iso} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}`;
}

const command: CommandDef = {
  name: 'events',
  usage: 'events [OPTIONS]',
  summary: 'Get real time events from hull (containers, images, networks, volumes)',
  flags: [
    { name: 'since', type: 'string', help: 'Show all events created since timestamp (unix seconds, RFC 3339, or a duration: 10m)' },
    { name: 'until', type: 'string', help: 'Stream events until this timestamp' },
    { name: 'filter', short: 'f', type: 'list', help: 'Filter output: type, event, container, image, network, volume, label (KEY=VALUE)' },
    { name: 'format', type: 'string', help: "'json' or a Go-style template ({{.Type}} {{.Action}} {{.Actor.ID}})" },
  ],
  maxArgs: 0,
  async run(ctx: CliContext, p) {
    const { Engine } = await import('../engine/engine.js');
    const engine = Engine.open(ctx.root) as Engine;
    const since = flagStr(p, 'since');
    const until = flagStr(p, 'until');
    const fmt = flagStr(p, 'format');
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await engine.events(
        { sinceNs: since ? parseEventTime(since, '--since') : undefined, untilNs: until ? parseEventTime(until, '--until') : undefined, filters: parseFilterFlags(flagList(p, 'filter')), signal: ac.signal },
        (e) => {
          ctx.stdout.write(`${fmt === 'json' || fmt === '{{json .}}' ? JSON.stringify(e) : fmt ? formatTemplate(fmt, e) : eventLine(e)}\n`);
        },
      );
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  },
};

export const commands: CommandDef[] = [command, { ...command, name: 'system events', usage: 'system events [OPTIONS]' }];
