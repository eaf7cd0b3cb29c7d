/**
 * Network routes of the Engine API: list, inspect, create, connect, disconnect, remove, prune.
 * Thin: each calls the engine's network service and shapes docker's reply.
 */
import { HullError } from '../errors.js';
import { filterNetworks } from '../engine/filters.js';
import { type Ctx, type Handler, sendJson, sendStatus } from './context.js';
import { HttpError } from './errors.js';
import { jsonBody } from './params.js';
import type { Router } from './router.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function strOf(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `invalid ${field}: expected a string`);
  return v;
}

function strMap(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new HttpError(400, `invalid ${field}: expected an object of strings`);
  return v as Record<string, string>;
}

/** docker's answer to a predefined network's removal is 403. */
function forbiddenIfPredefined(e: unknown): never {
  if (e instanceof HullError && e.code === 'FAILED_PRECONDITION' && /pre-defined network/.test(e.message)) throw new HttpError(403, e.message);
  throw e;
}

async function list(c: Ctx): Promise<void> {
  const nets = filterNetworks(await (await c.engine.networks()).list(), c.query.filters());
  sendJson(c, 200, nets.map(stripHull));
}

/** hull's own facts stay out of docker's shape (compose compares the keys it knows). */
function stripHull(n: Record<string, unknown>): Record<string, unknown> {
  const { Hull: _hull, ...rest } = n;
  void _hull;
  return rest;
}

async function inspect(c: Ctx): Promise<void> {
  sendJson(c, 200, stripHull(await (await c.engine.networks()).inspect(c.params.id!)));
}

async function create(c: Ctx): Promise<void> {
  const b = await jsonBody<Obj>(c.req, {});
  const name = strOf(b.Name, 'Name');
  if (!name) throw new HttpError(400, 'invalid Name: a network name is required');
  if (b.EnableIPv6 === true) throw new HttpError(400, 'EnableIPv6 is not supported by hull: its networks are IPv4 only');
  const ipam = b.IPAM === undefined || b.IPAM === null ? {} : b.IPAM;
  if (!isObj(ipam)) throw new HttpError(400, 'invalid IPAM: expected an object');
  if (ipam.Driver !== undefined && ipam.Driver !== null && ipam.Driver !== '' && ipam.Driver !== 'default') throw new HttpError(400, `IPAM driver ${JSON.stringify(ipam.Driver)} is not supported by hull (default is)`);
  const configs = ipam.Config === undefined || ipam.Config === null ? [] : ipam.Config;
  if (!Array.isArray(configs) || configs.some((x) => !isObj(x))) throw new HttpError(400, 'invalid IPAM.Config: expected a list of {Subnet, Gateway, IPRange}');
  if (configs.length > 1) throw new HttpError(400, 'IPAM.Config: hull networks have one IPv4 subnet');
  const cfg = (configs[0] ?? {}) as Obj;
  // docker's CheckDuplicate defaults to true since API 1.44; false asks for the existing one
  const r = await (await c.engine.networks()).create({
    name,
    driver: strOf(b.Driver, 'Driver'),
    subnet: strOf(cfg.Subnet, 'IPAM.Config[0].Subnet'),
    gateway: strOf(cfg.Gateway, 'IPAM.Config[0].Gateway'),
    ipRange: strOf(cfg.IPRange, 'IPAM.Config[0].IPRange'),
    internal: b.Internal === true,
    labels: strMap(b.Labels, 'Labels'),
    options: strMap(b.Options, 'Options'),
  });
  sendJson(c, 201, { Id: r.id, Warning: '' });
}

async function connect(c: Ctx): Promise<void> {
  const b = await jsonBody<Obj>(c.req, {});
  const ctr = strOf(b.Container, 'Container');
  if (!ctr) throw new HttpError(400, 'invalid Container: a container name or id is required');
  const ec = isObj(b.EndpointConfig) ? b.EndpointConfig : {};
  const ipam = isObj(ec.IPAMConfig) ? ec.IPAMConfig : {};
  const aliases = Array.isArray(ec.Aliases) ? ec.Aliases.filter((a): a is string => typeof a === 'string') : undefined;
  // docker-compose sends its short id among the aliases it reads back: no need to store it twice
  await (await c.engine.networks()).connect(c.params.id!, ctr, { aliases: aliases?.length ? aliases : undefined, ip: strOf(ipam.IPv4Address, 'EndpointConfig.IPAMConfig.IPv4Address') });
  sendStatus(c, 200);
}

async function disconnect(c: Ctx): Promise<void> {
  const b = await jsonBody<Obj>(c.req, {});
  const ctr = strOf(b.Container, 'Container');
  if (!ctr) throw new HttpError(400, 'invalid Container: a container name or id is required');
  await (await c.engine.networks()).disconnect(c.params.id!, ctr);
  sendStatus(c, 200);
}

async function remove(c: Ctx): Promise<void> {
  await (await c.engine.networks()).remove(c.params.id!).catch(forbiddenIfPredefined);
  sendStatus(c, 204);
}

async function prune(c: Ctx): Promise<void> {
  const names = await (await c.engine.networks()).prune();
  sendJson(c, 200, { NetworksDeleted: names });
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/networks', list);
  r.add('POST', '/networks/create', create);
  r.add('POST', '/networks/prune', prune);
  r.add('GET', '/networks/{id}', inspect);
  r.add('DELETE', '/networks/{id}', remove);
  r.add('POST', '/networks/{id}/connect', connect);
  r.add('POST', '/networks/{id}/disconnect', disconnect);
}
