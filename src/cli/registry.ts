import { flagBool, flagStr } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { HullError, invalid } from '../errors.js';
import { formatReference, parseReference } from '../images/reference.js';

/** pull, push, login, logout: thin adapters over src/registry/. */

const insecureFlag = { name: 'insecure-registry', type: 'list' as const, value: 'host[:port]', help: 'Allow plain http for this registry (also $HULL_INSECURE_REGISTRIES)' };

const pullDef: CommandDef = {
  name: 'pull',
  usage: 'pull [OPTIONS] NAME[:TAG|@DIGEST]',
  summary: 'Download an image from a registry',
  flags: [
    { name: 'platform', type: 'string', value: 'os/arch[/variant]', help: 'Platform to pull from a multi-platform image (default: the host, e.g. linux/amd64)' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' },
    { name: 'unpack', type: 'bool', help: 'Unpack the layers now, as docker does (default: at first run; also $HULL_PULL_UNPACK=1); --unpack=false defers' },
    insecureFlag,
  ],
  minArgs: 1,
  maxArgs: 1,
  failureExit: 1,
  async run(ctx, p) {
    const { pullImage } = await import('../registry/pull.js');
    const unpack = p.flags.has('unpack') ? flagBool(p, 'unpack') : undefined;
    const ref = p.args[0]!;
    const quiet = flagBool(p, 'quiet');
    const cancelled = await cancellable(ctx, (signal) => pullImage(ctx.root, ref, { platform: flagStr(p, 'platform'), quiet, out: ctx.stdout, insecure: insecure(p.flags.get('insecure-registry')), signal, unpack }));
    if (cancelled !== undefined) return cancelled;
    const r = parseReference(ref);
    ctx.stdout.write(`${formatReference(r)}\n`);
    return 0;
  },
};

const pushDef: CommandDef = {
  name: 'push',
  usage: 'push [OPTIONS] NAME[:TAG]',
  summary: 'Upload an image to a registry',
  flags: [{ name: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' }, insecureFlag],
  minArgs: 1,
  maxArgs: 1,
  failureExit: 1,
  async run(ctx, p) {
    const { push } = await import('../registry/push.js');
    const ref = p.args[0]!;
    const quiet = flagBool(p, 'quiet');
    const cancelled = await cancellable(ctx, (signal) => push(ctx.root, ref, { quiet, out: ctx.stdout, insecure: insecure(p.flags.get('insecure-registry')), signal }));
    if (cancelled !== undefined) return cancelled;
    if (quiet) ctx.stdout.write(`${formatReference(parseReference(ref))}\n`);
    return 0;
  },
};

/**
 * Run `fn` with an AbortSignal fired by SIGINT/SIGTERM, so an interrupted pull or push removes
 * what it half made before the process exits (130 after SIGINT, like a shell).
 */
async function cancellable(ctx: CliContext, fn: (signal: AbortSignal) => Promise<unknown>): Promise<number | undefined> {
  const ac = new AbortController();
  let sig: NodeJS.Signals | undefined;
  const on = (s: NodeJS.Signals) => {
    sig = s;
    ac.abort();
  };
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  try {
    await fn(ac.signal);
    return undefined;
  } catch (e) {
    if (!sig) throw e;
    ctx.stderr.write(`hull: ${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: ${e instanceof Error ? e.message : String(e)}\n`);
    return sig === 'SIGINT' ? 130 : 143;
  } finally {
    process.removeListener('SIGINT', on);
    process.removeListener('SIGTERM', on);
  }
}

function insecure(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  return [...(process.env.HULL_INSECURE_REGISTRIES ?? '').split(/[\s,]+/).filter(Boolean), ...(v as string[])];
}

/** Read a line from a TTY; with `hidden` the typed characters are not echoed. */
async function prompt(ctx: CliContext, question: string, hidden: boolean): Promise<string> {
  const stdin = ctx.stdin;
  ctx.stderr.write(question);
  return new Promise((resolve, reject) => {
    let buf = '';
    const wasRaw = stdin.isRaw;
    if (hidden) stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.removeListener('data', onData);
      if (hidden) stdin.setRawMode(wasRaw);
      stdin.pause();
      if (hidden) ctx.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new HullError('INVALID_ARGUMENT', 'login cancelled'));
        if (ch === '\u0004') return done();
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

async function readAllStdin(ctx: CliContext): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.stdin as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

const loginDef: CommandDef = {
  name: 'login',
  usage: 'login [OPTIONS] [SERVER]',
  summary: `Log in to a registry (credentials go to hull's own file, mode 0600).\nIf no server is given, Docker Hub is used.`,
  flags: [
    { name: 'username', short: 'u', type: 'string', help: 'Username' },
    { name: 'password', short: 'p', type: 'string', help: 'Password' },
    { name: 'password-stdin', type: 'bool', help: 'Take the password from stdin' },
    insecureFlag,
  ],
  maxArgs: 1,
  failureExit: 1,
  async run(ctx, p) {
    const { normaliseRegistryArg } = await import('../registry/hosts.js');
    const { saveCredentials } = await import('../registry/credentials.js');
    const { RegistryClient } = await import('../registry/client.js');
    const domain = normaliseRegistryArg(p.args[0]);
    let username = flagStr(p, 'username');
    let password = flagStr(p, 'password');
    if (flagBool(p, 'password-stdin')) {
      if (password !== undefined) throw invalid('--password and --password-stdin are mutually exclusive');
      if (!username) throw invalid('Must provide --username with --password-stdin');
      password = (await readAllStdin(ctx)).replace(/\r?\n$/, '');
    } else if (password !== undefined) {
      ctx.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (username === undefined || password === undefined) {
      if (!ctx.stdin.isTTY) throw invalid('Cannot perform an interactive login from a non TTY device');
      if (username === undefined) username = (await prompt(ctx, 'Username: ', false)).trim();
      if (password === undefined) password = await prompt(ctx, 'Password: ', true);
    }
    if (!username) throw invalid('Username is required');
    if (!password) throw invalid('Password is required');
    const client = new RegistryClient({ domain, credentials: { username, password, source: 'login' }, insecure: insecure(p.flags.get('insecure-registry')) });
    await client.ping(true);
    const file = saveCredentials(domain, username, password);
    ctx.stderr.write(`Credentials saved in ${file}\n`);
    ctx.stdout.write('Login Succeeded\n');
    return 0;
  },
};

const logoutDef: CommandDef = {
  name: 'logout',
  usage: 'logout [SERVER]',
  summary: `Log out from a registry (removes hull's stored credentials).\nIf no server is given, Docker Hub is used.`,
  flags: [],
  maxArgs: 1,
  async run(ctx, p) {
    const { normaliseRegistryArg, authKey } = await import('../registry/hosts.js');
    const { removeCredentials } = await import('../registry/credentials.js');
    const domain = normaliseRegistryArg(p.args[0]);
    if (removeCredentials(domain)) ctx.stdout.write(`Removing login credentials for ${authKey(domain)}\n`);
    else ctx.stdout.write(`Not logged in to ${authKey(domain)}\n`);
    return 0;
  },
};

export const commands: CommandDef[] = [pullDef, pushDef, loginDef, logoutDef, { ...pullDef, name: 'image pull', usage: `image ${pullDef.usage}` }, { ...pushDef, name: 'image push', usage: `image ${pushDef.usage}` }];
