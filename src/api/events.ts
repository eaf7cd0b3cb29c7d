/**
 * GET /events: docker's event stream (swagger: SystemEvents), JSON objects one per line, past
 * ones from `since`, new ones until `until` or the client leaves. Thin over engine/events.ts.
 */
import { parseEventTime } from '../engine/events.js';
import { type Ctx, type Handler, startJsonStream } from './context.js';
import type { Router } from './router.js';

async function events(c: Ctx): Promise<void> {
  const since = c.query.str('since');
  const until = c.query.str('until');
  const filters = c.query.filters();
  const o = {
    sinceNs: since ? parseEventTime(since, 'since') : undefined,
    untilNs: until ? parseEventTime(until, 'until') : undefined,
    filters,
  };
  const { checkEventFilters } = await import('../engine/events.js');
  checkEventFilters(filters); // a bad filter is a 400, before the stream starts
  const res = startJsonStream(c);
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  await c.engine.events({ ...o, signal: ac.signal }, async (e) => {
    if (!res.write(`${JSON.stringify(e)}\n`)) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r); });
  });
  if (!ac.signal.aborted) res.end();
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/events', events);
}
