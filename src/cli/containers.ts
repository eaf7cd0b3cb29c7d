/**
 * Container commands: thin adapters from docker's flags to the engine (src/engine/).
 * Exit codes as docker: 125 for hull's own errors, 126/127 for a command that cannot run or
 * is missing, the container's own code otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';
import { HullError, invalid } from '../errors.js';
import type { MountSpec, Ulimit } from '../runtime/types.js';
import type { Engine } from '../engine/engine.js';
import type { RunOptions } from '../engine/options.js';
import { parseBytes, parseCpus, parseEnvFile, parseEnvFlag, parseIntFlag, parseTmpfs, parseUlimit, parseVolume, normalizeSignal } from '../engine/units.js';
import { flagBool, flagList, flagStr, type FlagSpec, type Parsed } from './args.js';
import { parseMountFlag } from '../volumes/syntax.js';
import { parseFilterFlags, filterContainers, wantsAll } from '../engine/filters.js';
import type { CliContext, CommandDef } from './command.js';
import { parseDockerProfile, parseSysctl, PRIVILEGED_WARNING } from '../engine/options.js';

async function engineFor(ctx: CliContext): Promise<Engine> {
  const { Engine } = await import('../engine/engine.js');
  return Engine.open(ctx.root);
}

// ------------------------------------------------------------------ run / create flags

export const RUN_FLAGS: FlagSpec[] = [
  { name: 'detach', short: 'd', type: 'bool', help: 'Run container in background and print container ID' },
  { name: 'rm', type: 'bool', help: 'Automatically remove the container when it exits' },
  { name: 'name', type: 'string', help: 'Assign a name to the container' },
  { name: 'env', short: 'e', type: 'list', help: 'Set environment variables (KEY=VALUE, or KEY to copy it)' },
  { name: 'env-file', type: 'list', help: 'Read in a file of environment variables' },
  { name: 'workdir', short: 'w', type: 'string', help: 'Working directory inside the container (absolute)' },
  { name: 'user', short: 'u', type: 'string', help: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'entrypoint', type: 'string', help: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'memory', short: 'm', type: 'string', value: 'bytes', help: 'Memory limit (bytes, or with unit: 128m, 1g)' },
  { name: 'memory-swap', type: 'string', value: 'bytes', help: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { name: 'cpus', type: 'string', value: 'decimal', help: 'Number of CPUs (e.g. 1.5)' },
  { name: 'pids-limit', type: 'string', value: 'int', help: 'Tune container pids limit (-1 for unlimited)' },
  { name: 'read-only', type: 'bool', help: "Mount the container's root filesystem as read only" },
  { name: 'volume', short: 'v', type: 'list', help: 'Bind mount a host path or a volume: /HOST:/PATH[:ro], NAME:/PATH[:ro,nocopy], or /PATH (an anonymous volume)' },
  { name: 'mount', type: 'list', help: 'Attach a mount: type=volume|bind|tmpfs,source=..,target=..[,readonly][,volume-nocopy][,tmpfs-size=..]' },
  { name: 'label', short: 'l', type: 'list', help: 'Set meta data on a container (KEY=VALUE)' },
  { name: 'label-file', type: 'list', help: 'Read in a line delimited file of labels' },
  { name: 'tmpfs', type: 'list', help: 'Mount a tmpfs directory: /path[:size=64m,mode=1777]' },
  { name: 'network', type: 'string', help: 'Connect to a network: bridge (default), none, host, container:NAME, or a network name' },
  { name: 'net', type: 'string', help: 'Alias of --network', hidden: true },
  { name: 'publish', short: 'p', type: 'list', help: "Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/udp], ranges 8000-8002:80-82" },
  { name: 'publish-all', short: 'P', type: 'bool', help: 'Publish all exposed ports to free host ports' },
  { name: 'expose', type: 'list', help: 'Expose a port or a range of ports' },
  { name: 'network-alias', type: 'list', help: 'Add a network-scoped alias for the container (user networks)' },
  { name: 'net-alias', type: 'list', help: 'Alias of --network-alias', hidden: true },
  { name: 'ip', type: 'string', help: 'IPv4 address on the network (user networks), e.g. 10.214.7.50' },
  { name: 'mac-address', type: 'string', help: 'Container MAC address (e.g. 02:42:ac:11:00:02)' },
  { name: 'dns', type: 'list', help: 'Set custom DNS servers' },
  { name: 'dns-search', type: 'list', help: "Set custom DNS search domains ('.' for none)" },
  { name: 'dns-option', type: 'list', help: 'Set DNS options' },
  { name: 'dns-opt', type: 'list', help: 'Alias of --dns-option', hidden: true },
  { name: 'add-host', type: 'list', help: 'Add a custom host-to-IP mapping (host:ip, host:host-gateway)' },
  { name: 'hostname', short: 'h', type: 'string', help: 'Container host name' },
  { name: 'cap-add', type: 'list', help: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'list', help: 'Drop Linux capabilities' },
  { name: 'security-opt', type: 'list', help: "Security options: no-new-privileges, seccomp=unconfined, seccomp=FILE (docker's JSON profile)" },
  { name: 'privileged', type: 'bool', help: 'Give the container every capability, no seccomp filter, the host devices and a writable /sys (root on the host)' },
  { name: 'device', type: 'list', help: 'Add a host device: HOST[:CONTAINER[:PERMS]] (PERMS of r, w, m; default rwm)' },
  { name: 'group-add', type: 'list', help: 'Add groups to join (names from the image, or gids)' },
  { name: 'userns', type: 'string', help: 'User namespace: auto (own range of host ids: root inside is not root outside) or host (default; HULL_USERNS_DEFAULT changes it)' },
  { name: 'sysctl', type: 'list', help: 'Set a namespaced sysctl KEY=VALUE (IPC, net.*, fs.mqueue.*); global ones are refused' },
  { name: 'ulimit', type: 'list', help: 'Ulimit options: NAME=SOFT[:HARD] (clamped to the caller\'s hard limits)' },
  { name: 'init', type: 'bool', help: 'Run an init (tini) inside the container that forwards signals and reaps processes' },
  { name: 'interactive', short: 'i', type: 'bool', help: 'Keep STDIN open even if not attached' },
  { name: 'tty', short: 't', type: 'bool', help: 'Allocate a pseudo-TTY' },
  { name: 'runtime', type: 'string', help: 'OCI runtime for the container wall: crun (default), runc, runsc' },
  { name: 'isolation', type: 'string', help: 'The wall: container (default) or vm' },
  { name: 'vm', type: 'bool', help: 'Short for --isolation vm' },
  { name: 'vm-accel', type: 'string', value: 'string', help: 'VM accelerator: auto (default: KVM where a probe boot works, else TCG), kvm or tcg' },
  { name: 'vm-boot', type: 'string', value: 'string', help: 'How a VM starts: auto (restore a template of its shape, built at first use) or cold (boot its kernel)' },
  { name: 'platform', type: 'string', help: 'Platform to pull if the image is missing (os/arch)' },
];

/**
 * docker's CLI: `seccomp=FILE` is read here and sent as the profile's text; a file that cannot be
 * read or is not a profile is refused naming it, before anything is created.
 */
function seccompFileOpt(so: string, readFile: (f: string) => string): string {
  const m = /^seccomp[=:](.+)$/s.exec(so);
  if (!m || ['unconfined', 'builtin', 'default'].includes(m[1]!) || m[1]!.trimStart().startsWith('{')) return so;
  const file = m[1]!;
  let text: string;
  try {
    text = readFile(file);
  } catch (e) {
    throw invalid(`opening seccomp profile (${file}) failed: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, e);
  }
  try {
    parseDockerProfile(text);
  } catch (e) {
    throw invalid(`seccomp profile ${file}: ${(e as Error).message}`);
  }
  return `seccomp=${text}`;
}

/**
 * --label KEY=VALUE (KEY alone: an empty value) and --label-file lines (blank lines and # comments
 * skipped); later ones win, the files first as docker reads them.
 */
export function labelsFromFlags(labels: string[], files: string[], readFile: (f: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (l: string, where: string) => {
    const i = l.indexOf('=');
    const k = i < 0 ? l : l.slice(0, i);
    if (k.trim() === '') throw invalid(`invalid label '${l}'${where}: empty name`);
    out[k] = i < 0 ? '' : l.slice(i + 1);
  };
  for (const f of files) {
    let text: string;
    try {
      text = readFile(f);
    } catch (e) {
      throw invalid(`open ${f}: no such file or directory`, e);
    }
    text.split('\n').forEach((line, n) => {
      const l = line.trim();
      if (l && !l.startsWith('#')) put(l, ` in ${f} line ${n + 1}`);
    });
  }
  for (const l of labels) put(l, '');
  return out;
}

/** Docker flags -> RunOptions (validated values with units). Pure except reading --env-file. */
export function runOptionsFromFlags(p: Parsed, env: NodeJS.ProcessEnv = process.env, readFile = (f: string) => fs.readFileSync(f, 'utf8')): RunOptions {
  const [image, ...cmd] = p.args;
  if (!image) throw invalid('"hull run" requires at least 1 argument.\nUsage:  hull run [OPTIONS] IMAGE [COMMAND] [ARG...]');
  const lookup = (k: string) => env[k];
  const envList: string[] = [];
  for (const f of flagList(p, 'env-file')) {
    let text: string;
    try {
      text = readFile(f);
    } catch (e) {
      throw invalid(`open ${f}: no such file or directory`, e);
    }
    envList.push(...parseEnvFile(text, f, lookup));
  }
  for (const e of flagList(p, 'env')) {
    const kv = parseEnvFlag(e, lookup);
    if (kv !== undefined) envList.push(kv);
  }
  const mounts: MountSpec[] = [...flagList(p, 'volume').map(parseVolume), ...flagList(p, 'mount').map((m) => parseMountFlag(m, parseBytes)), ...flagList(p, 'tmpfs').map(parseTmpfs)];
  const ulimits: Ulimit[] = flagList(p, 'ulimit').map(parseUlimit);
  const o: RunOptions = { image, env: envList, mounts, ulimits };
  const labels = labelsFromFlags(flagList(p, 'label'), flagList(p, 'label-file'), readFile);
  if (Object.keys(labels).length) o.labels = labels;
  if (cmd.length) o.cmd = cmd;
  const str = (n: string) => flagStr(p, n);
  if (str('name') !== undefined) o.name = str('name');
  if (flagBool(p, 'rm')) o.rm = true;
  if (str('workdir') !== undefined) o.workdir = str('workdir');
  if (str('user') !== undefined) o.user = str('user');
  if (str('entrypoint') !== undefined) o.entrypoint = str('entrypoint');
  if (str('memory') !== undefined) o.memoryBytes = parseBytes(str('memory')!, '--memory');
  if (str('memory-swap') !== undefined) o.memorySwapBytes = str('memory-swap') === '-1' ? -1 : parseBytes(str('memory-swap')!, '--memory-swap');
  if (str('cpus') !== undefined) o.nanoCpus = parseCpus(str('cpus')!, os.cpus().length);
  if (str('pids-limit') !== undefined) o.pidsLimit = parseIntFlag(str('pids-limit')!, '--pids-limit', -1);
  if (flagBool(p, 'read-only')) o.readOnly = true;
  const net = str('network') ?? str('net');
  if (net !== undefined) o.network = net;
  const list = (...names: string[]) => names.flatMap((n) => flagList(p, n));
  if (list('publish').length) o.publish = list('publish');
  if (flagBool(p, 'publish-all')) o.publishAll = true;
  if (list('expose').length) o.expose = list('expose');
  if (list('network-alias', 'net-alias').length) o.networkAliases = list('network-alias', 'net-alias');
  if (str('ip') !== undefined) o.ip = str('ip');
  if (str('mac-address') !== undefined) o.macAddress = str('mac-address');
  if (list('dns').length) o.dns = list('dns');
  if (list('dns-search').length) o.dnsSearch = list('dns-search');
  if (list('dns-option', 'dns-opt').length) o.dnsOptions = list('dns-option', 'dns-opt');
  if (list('add-host').length) o.extraHosts = list('add-host');
  if (str('hostname') !== undefined) o.hostname = str('hostname');
  o.capAdd = flagList(p, 'cap-add');
  o.capDrop = flagList(p, 'cap-drop');
  o.securityOpt = flagList(p, 'security-opt').map((so) => seccompFileOpt(so, readFile));
  if (flagBool(p, 'privileged')) o.privileged = true;
  if (flagList(p, 'device').length) o.devices = flagList(p, 'device');
  if (flagList(p, 'group-add').length) o.groupAdd = flagList(p, 'group-add');
  if (str('userns') !== undefined) o.userns = str('userns');
  if (flagList(p, 'sysctl').length) o.sysctls = Object.fromEntries(flagList(p, 'sysctl').map(parseSysctl));
  if (flagBool(p, 'init')) o.init = true;
  if (flagBool(p, 'interactive')) o.interactive = true;
  if (flagBool(p, 'tty')) o.tty = true;
  if (str('runtime') !== undefined) o.runtime = str('runtime');
  const iso = flagBool(p, 'vm') ? 'vm' : str('isolation');
  if (iso !== undefined) {
    if (iso !== 'container' && iso !== 'vm') throw invalid(`invalid --isolation "${iso}": container or vm`);
    o.isolation = iso;
  }
  const accel = str('vm-accel');
  if (accel !== undefined) o.vmAccel = accel as RunOptions['vmAccel'];
  const boot = str('vm-boot');
  if (boot !== undefined) o.vmBoot = boot as RunOptions['vmBoot'];
  if (str('platform') !== undefined) o.platform = str('platform');
  return o;
}

/** Print a start failure like docker and pick its exit code (126/127 for exec errors). */
function startFailure(ctx: CliContext, e: unknown): number {
  const code = e instanceof HullError && 'exitCode' in e ? Number((e as { exitCode: number }).exitCode) : undefined;
  if (code === undefined) throw e;
  ctx.stderr.write(`hull: Error response from daemon: failed to create task for container: ${(e as Error).message}\n`);
  return code;
}

async function cmdRun(ctx: CliContext, p: Parsed, detachOnly = false): Promise<number> {
  const o = runOptionsFromFlags(p);
  const detach = detachOnly || flagBool(p, 'detach');
  if (o.tty && o.interactive && !detach && !ctx.stdin.isTTY) throw invalid('the input device is not a TTY');
  const engine = await engineFor(ctx);
  if (o.privileged) ctx.stderr.write(`${PRIVILEGED_WARNING}\n`);
  if (detachOnly) {
    const { id } = await engine.create(o, ctx.stderr);
    ctx.stdout.write(`${id}\n`);
    return 0;
  }
  // Signals for the container, not for hull: forward SIGTERM/SIGHUP (and SIGINT when the
  // runtime does not share our terminal) through the engine.
  let id: string | undefined;
  const fwd = (sig: NodeJS.Signals) => () => {
    if (id) engine.kill(id, sig).catch(() => undefined);
  };
  const handlers: [NodeJS.Signals, () => void][] = detach ? [] : [['SIGTERM', fwd('SIGTERM')], ['SIGHUP', fwd('SIGHUP')], ['SIGINT', o.rm || o.tty || o.interactive ? () => undefined : fwd('SIGINT')]];
  for (const [s, h] of handlers) process.on(s, h);
  try {
    const r = await engine.run(o, { stdin: ctx.stdin, stdout: ctx.stdout, stderr: ctx.stderr, detach, onStarted: (x) => (id = x) });
    if (detach) {
      ctx.stdout.write(`${r.id}\n`);
      return 0;
    }
    // e.g. a VM that did not boot: the exit code alone (255) would say nothing
    if (r.error && !r.oomKilled) ctx.stderr.write(`hull: ${r.error}\n`);
    return r.exitCode ?? 0;
  } catch (e) {
    return startFailure(ctx, e);
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
}

// ------------------------------------------------------------------ views

function short(id: string): string {
  return id.slice(0, 12);
}

/** docker's prune question on stdout, answered by a line on stdin (y or yes goes on). */
export function confirm(ctx: CliContext, warning: string): Promise<boolean> {
  ctx.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  return new Promise<boolean>((resolve) => {
    let buf = '';
    ctx.stdin.setEncoding('utf8');
    const onData = (d: string) => {
      buf += d;
      if (buf.includes('\n')) done();
    };
    const done = () => {
      ctx.stdin.off('data', onData);
      ctx.stdin.pause();
      resolve(/^y(es)?$/i.test(buf.trim()));
    };
    ctx.stdin.on('data', onData);
    ctx.stdin.once('end', done);
  });
}

/**
 * `inspect` of several objects: docker's JSON array (or each through a --format template); the
 * ones that fail are named on stderr and make the exit code 1.
 */
export async function inspectAll(ctx: CliContext, refs: string[], get: (ref: string) => Promise<unknown>, fmt: string | undefined, errPrefix: string): Promise<number> {
  const out = [];
  let rc = 0;
  for (const ref of refs) {
    try {
      out.push(await get(ref));
    } catch (e) {
      ctx.stderr.write(`${errPrefix}${(e as Error).message}\n`);
      rc = 1;
    }
  }
  if (fmt) for (const o of out) ctx.stdout.write(`${formatTemplate(fmt, o)}\n`);
  else ctx.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
  return rc;
}

/** A tiny subset of Go templates for --format: {{.A.B}}, {{json .A}}, {{json .}}. */
export function formatTemplate(tpl: string, data: unknown): string {
  return tpl.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, json: string | undefined, p: string) => {
    let v: unknown = data;
    for (const k of p.split('.').filter(Boolean)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(v ?? null);
    if (v === undefined || v === null) return '<no value>';
    if (typeof v === 'object') return Array.isArray(v) ? `[${v.join(' ')}]` : `map[${Object.entries(v).map(([k, x]) => `${k}:${String(x)}`).join(' ')}]`;
    return String(v);
  }).replace(/\\n/g, '\n');
}

function mib(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toFixed(2))}${units[i]}`;
}

// ------------------------------------------------------------------ commands

const noArgs = { stopAtPositional: false };

export const commands: CommandDef[] = [
  {
    name: 'run',
    usage: 'run [OPTIONS] IMAGE [COMMAND] [ARG...]',
    summary: 'Create and run a new container from an image',
    flags: RUN_FLAGS,
    stopAtPositional: true,
    minArgs: 1,
    failureExit: 125,
    run: (ctx, p) => cmdRun(ctx, p),
  },
  {
    name: 'create',
    usage: 'create [OPTIONS] IMAGE [COMMAND] [ARG...]',
    summary: 'Create a new container',
    flags: RUN_FLAGS.filter((f) => f.name !== 'detach'),
    stopAtPositional: true,
    minArgs: 1,
    failureExit: 125,
    run: (ctx, p) => cmdRun(ctx, p, true),
  },
  {
    name: 'start',
    usage: 'start CONTAINER [CONTAINER...]',
    summary: 'Start one or more stopped containers (detached, under their monitor)',
    flags: [],
    minArgs: 1,
    failureExit: 125,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      for (const ref of p.args) {
        try {
          await engine.start(ref);
        } catch (e) {
          return startFailure(ctx, e);
        }
        ctx.stdout.write(`${ref}\n`);
      }
      return 0;
    },
  },
  {
    name: 'stop',
    usage: 'stop [OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Stop one or more running containers (stop signal, then SIGKILL after the timeout)',
    flags: [{ name: 'time', short: 't', type: 'string', value: 'seconds', help: 'Seconds to wait before killing the container (default 10)' }],
    minArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      const t = flagStr(p, 'time') === undefined ? 10 : parseIntFlag(flagStr(p, 'time')!, '--time', -1);
      await Promise.all(p.args.map(async (ref) => {
        await engine.stop(ref, t);
        ctx.stdout.write(`${ref}\n`);
      }));
      return 0;
    },
  },
  {
    name: 'restart',
    usage: 'restart [OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Restart one or more containers',
    flags: [{ name: 'time', short: 't', type: 'string', value: 'seconds', help: 'Seconds to wait before killing the container (default 10)' }],
    minArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      const t = flagStr(p, 'time') === undefined ? 10 : parseIntFlag(flagStr(p, 'time')!, '--time', -1);
      for (const ref of p.args) {
        await engine.restart(ref, t);
        ctx.stdout.write(`${ref}\n`);
      }
      return 0;
    },
  },
  {
    name: 'kill',
    usage: 'kill [OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Kill one or more running containers',
    flags: [{ name: 'signal', short: 's', type: 'string', help: 'Signal to send to the container (default KILL)' }],
    minArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      const sig = normalizeSignal(flagStr(p, 'signal') ?? 'KILL', os.constants.signals as unknown as Record<string, number>);
      for (const ref of p.args) {
        await engine.kill(ref, sig);
        ctx.stdout.write(`${ref}\n`);
      }
      return 0;
    },
  },
  {
    name: 'rm',
    usage: 'rm [OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Remove one or more containers',
    flags: [
      { name: 'force', short: 'f', type: 'bool', help: 'Force the removal of a running container (uses SIGKILL)' },
      { name: 'volumes', short: 'v', type: 'bool', help: 'Remove anonymous volumes associated with the container' },
    ],
    minArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      let rc = 0;
      for (const ref of p.args) {
        try {
          await engine.rm(ref, { force: flagBool(p, 'force'), volumes: flagBool(p, 'volumes') });
          ctx.stdout.write(`${ref}\n`);
        } catch (e) {
          ctx.stderr.write(`hull: Error response from daemon: ${(e as Error).message}\n`);
          rc = 1;
        }
      }
      return rc;
    },
  },
  {
    name: 'wait',
    usage: 'wait CONTAINER [CONTAINER...]',
    summary: 'Block until one or more containers stop, then print their exit codes',
    flags: [],
    minArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      for (const ref of p.args) ctx.stdout.write(`${(await engine.wait(ref)).StatusCode}\n`);
      return 0;
    },
  },
  {
    name: 'ps',
    usage: 'ps [OPTIONS]',
    summary: 'List containers',
    flags: [
      { name: 'all', short: 'a', type: 'bool', help: 'Show all containers (default shows just running)' },
      { name: 'quiet', short: 'q', type: 'bool', help: 'Only display container IDs' },
      { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
      { name: 'format', type: 'string', help: "'json', 'table' or a Go-style template ({{.ID}} {{.Names}} ...)" },
      { name: 'filter', short: 'f', type: 'list', help: 'Filter output: id, name, label, status, exited, ancestor, network, volume, isolation, before, since (KEY=VALUE)' },
    ],
    ...noArgs,
    maxArgs: 0,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      const filters = parseFilterFlags(flagList(p, 'filter'));
      const list = filterContainers(await engine.ps({ all: flagBool(p, 'all') || wantsAll(filters) }), filters, (ref) => {
        const img = engine.images.tryResolve(ref);
        return img ? [img.id] : [];
      });
      const trunc = !flagBool(p, 'no-trunc');
      if (flagBool(p, 'quiet')) {
        for (const c of list) ctx.stdout.write(`${trunc ? short(c.Id) : c.Id}\n`);
        return 0;
      }
      const { humanAgo, table } = await import('./output.js');
      const rows = list.map((c) => ({
        ID: trunc ? short(c.Id) : c.Id,
        Image: c.Image,
        Command: trunc && c.Command.length > 20 ? `"${c.Command.slice(0, 19)}…"` : `"${c.Command}"`,
        CreatedAt: new Date(c.Created * 1000).toISOString(),
        RunningFor: humanAgo(new Date(c.Created * 1000).toISOString()),
        Status: c.Status,
        State: c.State,
        Names: c.Names[0]!.slice(1),
        Ports: c.PortsText,
        Networks: Object.keys(c.NetworkSettings.Networks).join(','),
        Labels: Object.entries(c.Labels).map(([k, v]) => `${k}=${v}`).join(','),
        Mounts: c.Mounts.map((m) => String(m.Name ?? m.Source)).join(','),
        Isolation: c.Isolation,
      }));
      const fmt = flagStr(p, 'format');
      if (fmt === 'json' || fmt === '{{json .}}') {
        for (const r of rows) ctx.stdout.write(`${JSON.stringify(r)}\n`);
      } else if (fmt && fmt !== 'table') {
        for (const r of rows) ctx.stdout.write(`${formatTemplate(fmt, r)}\n`);
      } else {
        ctx.stdout.write(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'WALL', 'PORTS', 'NAMES'], rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Isolation, r.Ports, r.Names])));
      }
      return 0;
    },
  },
  {
    name: 'logs',
    usage: 'logs [OPTIONS] CONTAINER',
    summary: 'Fetch the logs of a container',
    flags: [
      { name: 'follow', short: 'f', type: 'bool', help: 'Follow log output' },
      { name: 'tail', short: 'n', type: 'string', help: 'Number of lines to show from the end of the logs (default "all")' },
      { name: 'timestamps', short: 't', type: 'bool', help: 'Show timestamps' },
    ],
    minArgs: 1,
    maxArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      const t = flagStr(p, 'tail');
      const tail = t === undefined || t === 'all' ? -1 : parseIntFlag(t, '--tail', 0);
      const ac = new AbortController();
      const onInt = () => ac.abort();
      process.once('SIGINT', onInt);
      try {
        await engine.logs(p.args[0]!, { follow: flagBool(p, 'follow'), tail, timestamps: flagBool(p, 'timestamps'), signal: ac.signal }, ctx);
      } finally {
        process.off('SIGINT', onInt);
      }
      return 0;
    },
  },
  {
    name: 'exec',
    usage: 'exec [OPTIONS] CONTAINER COMMAND [ARG...]',
    summary: 'Execute a command in a running container',
    flags: [
      { name: 'interactive', short: 'i', type: 'bool', help: 'Keep STDIN open even if not attached' },
      { name: 'tty', short: 't', type: 'bool', help: 'Allocate a pseudo-TTY' },
      { name: 'env', short: 'e', type: 'list', help: 'Set environment variables' },
      { name: 'workdir', short: 'w', type: 'string', help: 'Working directory inside the container' },
      { name: 'user', short: 'u', type: 'string', help: 'Username or UID (format: <name|uid>[:<group|gid>])' },
    ],
    stopAtPositional: true,
    minArgs: 2,
    failureExit: 126,
    async run(ctx, p) {
      const [ref, ...cmd] = p.args;
      const tty = flagBool(p, 'tty');
      const interactive = flagBool(p, 'interactive');
      if (tty && interactive && !ctx.stdin.isTTY) throw invalid('the input device is not a TTY');
      const env = flagList(p, 'env').map((e) => parseEnvFlag(e, (k) => process.env[k])).filter((x): x is string => x !== undefined);
      const engine = await engineFor(ctx);
      try {
        return await engine.exec(ref!, { cmd, env, workdir: flagStr(p, 'workdir'), user: flagStr(p, 'user'), tty, interactive }, ctx);
      } catch (e) {
        if (e instanceof HullError && 'exitCode' in e) {
          ctx.stderr.write(`hull: OCI runtime exec failed: ${e.message}\n`);
          return Number((e as { exitCode: number }).exitCode);
        }
        throw e;
      }
    },
  },
  {
    name: 'inspect',
    usage: 'inspect [OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Display detailed information on one or more containers',
    flags: [{ name: 'format', short: 'f', type: 'string', help: 'Format the output using a Go-style template ({{.State.Status}}, {{json .HostConfig}})' }],
    minArgs: 1,
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      return inspectAll(ctx, p.args, (ref) => engine.inspect(ref), flagStr(p, 'format'), 'Error: ');
    },
  },
  {
    name: 'stats',
    usage: 'stats [OPTIONS] [CONTAINER...]',
    summary: 'Display a live stream of container resource usage statistics',
    flags: [
      { name: 'no-stream', type: 'bool', help: 'Disable streaming stats and only pull the first result' },
      { name: 'format', type: 'string', help: "'json' or a Go-style template" },
    ],
    async run(ctx, p) {
      const engine = await engineFor(ctx);
      const { table } = await import('./output.js');
      for (;;) {
        const list = await engine.stats(p.args);
        const net = new Map<string, [number, number]>();
        for (const s of list) {
          const c = Object.values(await engine.networkCounters(s.id));
          net.set(s.id, [c.reduce((a, x) => a + x.rx_bytes, 0), c.reduce((a, x) => a + x.tx_bytes, 0)]);
        }
        const rows = list.map((s) => ({
          ID: short(s.id),
          Name: s.name,
          CPUPerc: `${s.cpuPercent.toFixed(2)}%`,
          MemUsage: `${mib(s.usage.memoryBytes)} / ${s.usage.memoryLimitBytes ? mib(s.usage.memoryLimitBytes) : mib(os.totalmem())}`,
          MemPerc: `${((s.usage.memoryBytes / (s.usage.memoryLimitBytes || os.totalmem())) * 100).toFixed(2)}%`,
          NetIO: `${mib(net.get(s.id)![0])} / ${mib(net.get(s.id)![1])}`,
          BlockIO: '0B / 0B',
          PIDs: String(s.usage.pids),
        }));
        const fmt = flagStr(p, 'format');
        if (fmt === 'json') for (const r of rows) ctx.stdout.write(`${JSON.stringify(r)}\n`);
        else if (fmt) for (const r of rows) ctx.stdout.write(`${formatTemplate(fmt, r)}\n`);
        else ctx.stdout.write(table(['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'], rows.map((r) => [r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs])));
        if (flagBool(p, 'no-stream')) return 0;
      }
    },
  },
  {
    name: 'container prune',
    usage: 'container prune [OPTIONS]',
    summary: 'Remove all stopped containers',
    flags: [{ name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' }],
    maxArgs: 0,
    async run(ctx, p) {
      if (!flagBool(p, 'force') && !(await confirm(ctx, 'WARNING! This will remove all stopped containers.'))) return 0;
      const engine = await engineFor(ctx);
      const r = await engine.prune();
      ctx.stdout.write(r.deleted.length ? `Deleted Containers:\n${r.deleted.map((d) => `${d}\n`).join('')}\n` : '');
      ctx.stdout.write('Total reclaimed space: 0B\n');
      return 0;
    },
  },
];
