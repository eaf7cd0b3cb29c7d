import { HullError, errorMessage, isHullError } from '../errors.js';
import { resolveRoot } from '../paths.js';
import { flagHelp, parseArgs, type FlagSpec } from './args.js';
import type { CliContext, CommandDef, CommandModule } from './command.js';

/**
 * Which module holds each command. Modules load lazily so that `hull run` does not pay
 * for the registry client or the API server at start-up.
 */
const MODULES: Record<string, () => Promise<CommandModule>> = {
  images: () => import('./images.js'),
  containers: () => import('./containers.js'),
  registry: () => import('./registry.js'),
  serve: () => import('./serve.js'),
  contrast: () => import('./contrast.js'),
  system: () => import('./system.js'),
  networks: () => import('./networks.js'),
  build: () => import('./build.js'),
  volumes: () => import('./volumes.js'),
  events: () => import('./events.js'),
  manage: () => import('./manage.js'),
  cp: () => import('./cp.js'),
  changes: () => import('./changes.js'),
  vm: () => import('./vm.js'),
};

/** Command (and `group sub` form) -> module. Docker's aliases map to the same command. */
const ROUTES: Record<string, keyof typeof MODULES> = {
  load: 'images', save: 'images', import: 'images', images: 'images', tag: 'images', rmi: 'images',
  'image load': 'images', 'image save': 'images', 'image import': 'images', 'image ls': 'images',
  'image list': 'images', 'image tag': 'images', 'image rm': 'images', 'image inspect': 'images',
  'image prune': 'images',
  diff: 'changes', commit: 'changes', export: 'changes', history: 'changes',
  'container diff': 'changes', 'container commit': 'changes', 'container export': 'changes', 'image history': 'changes',
  run: 'containers', create: 'containers', start: 'containers', stop: 'containers', kill: 'containers',
  rm: 'containers', ps: 'containers', logs: 'containers', wait: 'containers', restart: 'containers',
  exec: 'containers', inspect: 'containers', stats: 'containers',
  'container run': 'containers', 'container create': 'containers', 'container start': 'containers',
  'container stop': 'containers', 'container kill': 'containers', 'container rm': 'containers',
  'container ls': 'containers', 'container list': 'containers', 'container ps': 'containers',
  'container logs': 'containers', 'container wait': 'containers', 'container restart': 'containers',
  'container exec': 'containers', 'container inspect': 'containers', 'container stats': 'containers',
  'container prune': 'containers',
  pull: 'registry', push: 'registry', login: 'registry', logout: 'registry',
  'image pull': 'registry', 'image push': 'registry',
  serve: 'serve',
  contrast: 'contrast', advise: 'contrast',
  info: 'system', version: 'system', 'system info': 'system', 'system check': 'system',
  port: 'networks', 'container port': 'networks',
  'network create': 'networks', 'network ls': 'networks', 'network list': 'networks', 'network inspect': 'networks',
  'network rm': 'networks', 'network remove': 'networks', 'network prune': 'networks',
  'network connect': 'networks', 'network disconnect': 'networks',
  build: 'build', 'image build': 'build', 'builder build': 'build', 'builder prune': 'build',
  'volume create': 'volumes', 'volume ls': 'volumes', 'volume list': 'volumes', 'volume inspect': 'volumes',
  'volume rm': 'volumes', 'volume remove': 'volumes', 'volume prune': 'volumes',
  events: 'events', 'system events': 'events',
  'system df': 'manage', cp: 'cp', 'container cp': 'cp',
  top: 'manage', pause: 'manage', unpause: 'manage', rename: 'manage', update: 'manage', 'container update': 'manage',
  'vm pool': 'vm',
  'container top': 'manage', 'container pause': 'manage', 'container unpause': 'manage', 'container rename': 'manage',
};

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', type: 'string', value: 'dir', help: 'State root (default $HULL_ROOT or /var/lib/hull)' },
  { name: 'debug', short: 'D', type: 'bool', help: 'Print stack traces on errors' },
  { name: 'version', short: 'v', type: 'bool', help: 'Print version and exit' },
  { name: 'help', short: 'h', type: 'bool', help: 'Print usage' },
];

const GROUPS = ['image', 'container', 'system', 'network', 'builder', 'volume', 'vm'];

function usage(): string {
  return `Usage:  hull [OPTIONS] COMMAND

Run the same OCI image as a container (shared kernel) or a microVM (own kernel).

Images:      images  build  load  save  import  tag  rmi  pull  push  login  logout  image ...  builder prune
Containers:  run  create  start  stop  kill  restart  rm  ps  logs  wait  exec  inspect  stats  port  top  pause  unpause  rename  update  cp  container ...
Networks:    network create  ls  inspect  rm  prune  connect  disconnect
Volumes:     volume create  ls  inspect  rm  prune
Engine:      serve  info  version  events  system check  system df
MicroVMs:    vm pool
Contrast:    contrast  advise

Options:
${flagHelp(GLOBAL_FLAGS)}

Run 'hull COMMAND --help' for more information on a command.
`;
}

export async function main(argv: string[]): Promise<number> {
  // Global flags come before the command, as with docker.
  let i = 0;
  const globalArgv: string[] = [];
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const a = argv[i]!;
    globalArgv.push(a);
    if (a === '--root') globalArgv.push(argv[++i] ?? '');
    i++;
  }
  const ctxBase = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
  let debug = false;
  try {
    const g = parseArgs(globalArgv, GLOBAL_FLAGS);
    debug = g.flags.get('debug') === true;
    if (g.flags.get('version') === true) {
      const { versionString } = await import('../version.js');
      process.stdout.write(`${versionString()}\n`);
      return 0;
    }
    const rest = argv.slice(i);
    if (rest.length === 0 || g.flags.get('help') === true || rest[0] === 'help') {
      process.stdout.write(usage());
      return rest.length === 0 && g.flags.get('help') !== true && rest[0] !== 'help' ? 1 : 0;
    }
    let name = rest[0]!;
    let cmdArgv = rest.slice(1);
    if (GROUPS.includes(name)) {
      if (cmdArgv.length === 0 || cmdArgv[0]!.startsWith('-')) {
        process.stdout.write(usage());
        return cmdArgv.length === 0 ? 1 : 0;
      }
      name = `${name} ${cmdArgv[0]}`;
      cmdArgv = cmdArgv.slice(1);
    }
    const mod = ROUTES[name];
    if (!mod) throw new HullError('INVALID_ARGUMENT', `'${name}' is not a hull command.\nSee 'hull --help'`);
    const loaded = await MODULES[mod]!();
    const def = findCommand(loaded.commands, name);
    const root = resolveRoot(g.flags.get('root') as string | undefined);
    return await runCommand(def, { ...ctxBase, root }, cmdArgv, debug);
  } catch (e) {
    reportError(e, debug);
    return 125;
  }
}

function findCommand(commands: CommandDef[], name: string): CommandDef {
  const short = name.split(' ').pop()!;
  const aliases: Record<string, string> = { ls: 'images', list: 'images', rm: 'rmi' };
  const candidates = [name, name.startsWith('image ') ? `image ${short}` : short];
  if (name.startsWith('image ') && aliases[short]) candidates.push(aliases[short]!);
  if (name === 'container ls' || name === 'container list') candidates.push('ps');
  if (name === 'container port') candidates.push('port');
  if (name === 'network list') candidates.push('network ls');
  if (name === 'network remove') candidates.push('network rm');
  if (name === 'volume list') candidates.push('volume ls');
  if (name === 'volume remove') candidates.push('volume rm');
  candidates.push(short); // image history -> history
  for (const c of candidates) {
    const d = commands.find((x) => x.name === c);
    if (d) return d;
  }
  throw new HullError('INTERNAL', `command ${name} is routed but not implemented`);
}

async function runCommand(def: CommandDef, ctx: CliContext, argv: string[], debug: boolean): Promise<number> {
  if (argv.includes('--help') && (!def.stopAtPositional || argv.indexOf('--help') < firstPositional(argv))) {
    process.stdout.write(`Usage:  hull ${def.usage}\n\n${def.summary}\n\nOptions:\n${flagHelp(def.flags)}\n`);
    return 0;
  }
  try {
    const p = parseArgs(argv, def.flags, { stopAtPositional: def.stopAtPositional });
    if (def.minArgs !== undefined && p.args.length < def.minArgs) {
      throw new HullError('INVALID_ARGUMENT', `"hull ${def.name}" requires at least ${def.minArgs} argument${def.minArgs === 1 ? '' : 's'}.\nUsage:  hull ${def.usage}`);
    }
    if (def.maxArgs !== undefined && p.args.length > def.maxArgs) {
      throw new HullError('INVALID_ARGUMENT', `"hull ${def.name}" accepts at most ${def.maxArgs} argument${def.maxArgs === 1 ? '' : 's'}.\nUsage:  hull ${def.usage}`);
    }
    return await def.run(ctx, p);
  } catch (e) {
    reportError(e, debug);
    if (isHullError(e, 'INVALID_ARGUMENT') && def.failureExit === undefined) return 125;
    return def.failureExit ?? 1;
  }
}

function firstPositional(argv: string[]): number {
  const i = argv.findIndex((a) => !a.startsWith('-'));
  return i < 0 ? argv.length : i;
}

export function reportError(e: unknown, debug: boolean): void {
  const msg = errorMessage(e);
  process.stderr.write(`hull: ${msg}\n`);
  if (isHullError(e) && e.hint) process.stderr.write(`hint: ${e.hint}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
}
