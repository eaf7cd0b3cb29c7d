/**
 * `hull build` and `hull builder prune`: thin adapters over src/build/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../errors.js';
import { flagBool, flagList, flagStr, type Parsed } from './args.js';
import type { CliContext, CommandDef } from './command.js';

/** `K=V`, or `K` alone: the value from the environment (docker's --build-arg), skipped when unset. */
export function parseBuildArgs(list: string[], env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of list) {
    const eq = a.indexOf('=');
    const k = eq < 0 ? a : a.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw invalid(`--build-arg ${JSON.stringify(a)}: want NAME=VALUE`);
    if (eq >= 0) m.set(k, a.slice(eq + 1));
    else if (env[k] !== undefined) m.set(k, env[k]!);
  }
  return m;
}

export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    if (eq === 0) throw invalid(`--label ${JSON.stringify(l)}: want KEY=VALUE`);
    out[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

async function openContext(ctx: CliContext, p: Parsed, tmp: string) {
  const { contextFromDir, contextFromTar, emptyContext, looksLikeArchive } = await import('../build/context.js');
  const { peek } = await import('../images/stream-util.js');
  const where = p.args[0]!;
  const file = flagStr(p, 'file');
  let dockerfile: { path?: string; text?: string } | undefined = file ? { path: file } : undefined;
  if (file === '-') {
    if (where === '-') throw invalid('invalid argument: can\'t use stdin for both build context and dockerfile');
    dockerfile = { text: fs.readFileSync(0, 'utf8') };
  }
  if (where === '-') {
    const { head, stream } = await peek(ctx.stdin, 512);
    if (looksLikeArchive(head)) return contextFromTar(stream, tmp, dockerfile);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return emptyContext(tmp, Buffer.concat(chunks).toString('utf8'));
  }
  if (/^(https?|git):\/\//.test(where) || where.startsWith('git@')) throw invalid(`unable to prepare context: ${where}: remote contexts need the network, which hull build does not use: clone or download it and give the directory`);
  const st = fs.statSync(where, { throwIfNoEntry: false });
  if (!st) throw invalid(`unable to prepare context: path ${JSON.stringify(where)} not found`);
  if (st.isDirectory()) {
    if (dockerfile?.path && !path.isAbsolute(dockerfile.path) && !fs.existsSync(dockerfile.path) && fs.existsSync(path.join(where, dockerfile.path))) dockerfile = { path: path.join(where, dockerfile.path) };
    return contextFromDir(where, dockerfile);
  }
  // a tar file: -f names a Dockerfile inside it
  return contextFromTar(fs.createReadStream(where), tmp, dockerfile?.text !== undefined ? dockerfile : { path: file });
}

const buildCmd: CommandDef = {
  name: 'build',
  usage: 'build [OPTIONS] PATH | - | TARFILE',
  summary: 'Build an image from a Dockerfile (RUN steps in containers, or in microVMs with --vm)',
  flags: [
    { name: 'tag', short: 't', type: 'list', value: 'list', help: 'Name and optionally a tag in the "name:tag" format' },
    { name: 'file', short: 'f', type: 'string', value: 'string', help: "Name of the Dockerfile (default: 'PATH/Dockerfile')" },
    { name: 'build-arg', type: 'list', value: 'list', help: 'Set build-time variables' },
    { name: 'target', type: 'string', value: 'string', help: 'Set the target build stage to build' },
    { name: 'no-cache', type: 'bool', help: 'Do not use cache when building the image' },
    { name: 'pull', type: 'bool', help: 'Always attempt to pull a newer version of the image' },
    { name: 'label', type: 'list', value: 'list', help: 'Set metadata for an image' },
    { name: 'platform', type: 'string', value: 'string', help: 'Set platform (only the host\'s, linux/amd64 here)' },
    { name: 'iidfile', type: 'string', value: 'string', help: 'Write the image ID to the file' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress the build output and print image ID on success' },
    { name: 'progress', type: 'string', value: 'string', help: 'Set type of progress output (auto, plain, tty); plain is BuildKit\'s line format' },
    { name: 'isolation', type: 'string', value: 'string', help: 'Where RUN steps run: container (default) or vm (a microVM with its own kernel)' },
    { name: 'vm', type: 'bool', help: 'Short for --isolation vm' },
    { name: 'network', type: 'string', help: "RUN steps' network: bridge (default), none, host, or a user network" },
    { name: 'memory', short: 'm', type: 'string', value: 'bytes', help: 'Memory limit of each RUN step (a VM\'s RAM; default 1g for VMs)' },
    { name: 'rm', type: 'bool', help: 'Remove intermediate containers after a successful build (always: accepted for docker compatibility)' },
    { name: 'force-rm', type: 'bool', help: 'Always remove intermediate containers (always: accepted for docker compatibility)' },
  ],
  minArgs: 1,
  maxArgs: 1,
  failureExit: 1,
  async run(ctx, p) {
    const { build } = await import('../build/builder.js');
    const { classicText, plainRenderer } = await import('../build/events.js');
    const { Engine } = await import('../engine/engine.js');
    const { layout } = await import('../paths.js');
    const iso = flagBool(p, 'vm') ? 'vm' : (flagStr(p, 'isolation') ?? 'container');
    if (iso !== 'container' && iso !== 'vm') throw invalid(`invalid --isolation ${JSON.stringify(iso)}: container or vm`);
    const progress = flagStr(p, 'progress') ?? 'auto';
    if (!['auto', 'plain', 'tty'].includes(progress)) throw invalid(`invalid --progress ${JSON.stringify(progress)}: auto, plain or tty`);
    const mem = flagStr(p, 'memory');
    const { parseBytes } = await import('../engine/units.js');
    const quiet = flagBool(p, 'quiet');
    const sink = quiet ? () => undefined : progress === 'plain' ? plainRenderer((s) => ctx.stderr.write(s)) : (e: Parameters<typeof classicText>[0]) => ctx.stdout.write(classicText(e));
    const tmp = layout(ctx.root).tmp;
    const opened = await openContext(ctx, p, tmp);
    const engine = Engine.open(ctx.root);
    const { RunFailed } = await import('../build/steps.js');
    // Ctrl-C / SIGTERM: stop at the next step and kill a running RUN, which is then removed
    // (the default would exit at once and leave its container behind); a second one exits now
    const ac = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      if (ac.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      sink({ type: 'context', bytes: opened.bytes });
      const r = await build(
        engine,
        {
          context: opened.tree,
          dockerfile: opened.dockerfile,
          tags: flagList(p, 'tag'),
          buildArgs: parseBuildArgs(flagList(p, 'build-arg')),
          target: flagStr(p, 'target'),
          noCache: flagBool(p, 'no-cache'),
          pull: flagBool(p, 'pull'),
          labels: parseLabels(flagList(p, 'label')),
          platform: flagStr(p, 'platform'),
          isolation: iso,
          memoryBytes: mem ? parseBytes(mem, '--memory') : undefined,
          network: flagStr(p, 'network') === 'default' ? undefined : flagStr(p, 'network'),
          signal: ac.signal,
        },
        sink,
      );
      const iid = flagStr(p, 'iidfile');
      if (iid) fs.writeFileSync(iid, r.id);
      if (quiet) ctx.stdout.write(`${r.id}\n`);
      return 0;
    } catch (e) {
      // like docker's classic builder: a failed RUN's exit code is the build's
      if (!(e instanceof RunFailed)) throw e;
      ctx.stderr.write(`hull: ${e.message}\n`);
      return e.exitCode;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      opened.close();
      engine.close();
    }
  },
};

const builderPruneCmd: CommandDef = {
  name: 'builder prune',
  usage: 'builder prune [OPTIONS]',
  summary: 'Remove the build cache (cached steps and the intermediate images only they use)',
  flags: [
    { name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation (hull never prompts)' },
    { name: 'all', short: 'a', type: 'bool', help: 'Remove all build cache (the default in hull)' },
  ],
  maxArgs: 0,
  async run(ctx) {
    const { ImageStore } = await import('../images/store.js');
    const { humanSize } = await import('./output.js');
    const r = ImageStore.open(ctx.root).pruneBuildCache();
    if (r.deleted.length) {
      ctx.stdout.write('Deleted build cache objects:\n');
      for (const d of r.deleted) if ('Deleted' in d) ctx.stdout.write(`${d.Deleted.replace(/^sha256:/, '').slice(0, 25)}\n`);
      ctx.stdout.write('\n');
    }
    ctx.stdout.write(`Total reclaimed space: ${humanSize(r.reclaimed)} (${r.steps} cached step${r.steps === 1 ? '' : 's'} forgotten)\n`);
    return 0;
  },
};

export const commands: CommandDef[] = [buildCmd, builderPruneCmd];
