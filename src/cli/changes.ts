/** What a container changed: diff, commit, export; and an image's history. Docker's flags and output. */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { invalid } from '../errors.js';
import { shortId } from '../oci/digest.js';
import { layout } from '../paths.js';
import { flagBool, flagList, flagStr } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { humanAgo, humanSize, table } from './output.js';

async function engineFor(ctx: CliContext) {
  const { Engine } = await import('../engine/engine.js');
  return Engine.open(ctx.root);
}

const KIND = ['C', 'A', 'D'];

const diffCmd: CommandDef = {
  name: 'diff',
  usage: 'diff CONTAINER',
  summary: "Inspect changes to files or directories on a container's filesystem",
  flags: [],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, p) {
    const { containerChanges } = await import('../engine/changes.js');
    const engine = await engineFor(ctx);
    try {
      const l = await engine.layerOf(p.args[0]!);
      try {
        for (const ch of containerChanges(l)) ctx.stdout.write(`${KIND[ch.Kind]} ${ch.Path}\n`);
      } finally {
        l.release();
      }
    } finally {
      engine.close();
    }
    return 0;
  },
};

const commitCmd: CommandDef = {
  name: 'commit',
  usage: 'commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  summary: "Create a new image from a container's changes",
  flags: [
    { name: 'author', short: 'a', type: 'string', help: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    { name: 'change', short: 'c', type: 'list', value: 'list', help: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string', help: 'Commit message' },
    { name: 'pause', short: 'p', type: 'bool', help: 'Pause container during commit (default true)' },
  ],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, p) {
    const { commitContainer, whilePaused } = await import('../engine/changes.js');
    const engine = await engineFor(ctx);
    try {
      const pause = !p.flags.has('pause') || flagBool(p, 'pause');
      const l = await engine.layerOf(p.args[0]!, { pause });
      try {
        const img = await whilePaused(engine, l, pause, () => commitContainer(engine.images, l, {
          reference: p.args[1],
          changes: flagList(p, 'change'),
          author: flagStr(p, 'author'),
          comment: flagStr(p, 'message'),
        }, layout(ctx.root).tmp));
        ctx.stdout.write(`${img.id}\n`);
      } finally {
        l.release();
      }
    } finally {
      engine.close();
    }
    return 0;
  },
};

const exportCmd: CommandDef = {
  name: 'export',
  usage: 'export [OPTIONS] CONTAINER',
  summary: "Export a container's filesystem as a tar archive",
  flags: [{ name: 'output', short: 'o', type: 'string', value: 'file', help: 'Write to a file, instead of STDOUT' }],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, p) {
    const out = flagStr(p, 'output');
    if (!out && ctx.stdout.isTTY) throw invalid('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const { exportContainer } = await import('../engine/changes.js');
    const engine = await engineFor(ctx);
    try {
      const l = await engine.layerOf(p.args[0]!);
      const { stream, done } = await exportContainer(l, layout(ctx.root).tmp).catch((e: unknown) => {
        l.release();
        throw e;
      });
      try {
        if (out) {
          // written next to the target and renamed: a failed export leaves no partial file
          const tmp = `${out}.hull-tmp`;
          try {
            await pipeline(stream, fs.createWriteStream(tmp));
            fs.renameSync(tmp, out);
          } finally {
            fs.rmSync(tmp, { force: true });
          }
        } else {
          await pipeline(stream, ctx.stdout).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EPIPE') throw e; // the reader stopped early (| head): as docker, no error
          });
        }
      } finally {
        done();
        l.release();
      }
    } finally {
      engine.close();
    }
    return 0;
  },
};

const historyCmd: CommandDef = {
  name: 'history',
  usage: 'history [OPTIONS] IMAGE',
  summary: 'Show the history of an image',
  flags: [
    { name: 'human', short: 'H', type: 'bool', help: 'Print sizes and dates in human readable format (default true)' },
    { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, p) {
    const { imageHistory } = await import('../engine/changes.js');
    const { ImageStore } = await import('../images/store.js');
    const store = ImageStore.open(ctx.root);
    const rows = await imageHistory(store, store.resolve(p.args[0]!));
    const noTrunc = flagBool(p, 'no-trunc');
    const id = (x: string) => (x === '<missing>' || noTrunc ? x : shortId(x));
    if (flagBool(p, 'quiet')) {
      for (const r of rows) ctx.stdout.write(`${id(r.Id)}\n`);
      return 0;
    }
    const human = !p.flags.has('human') || flagBool(p, 'human');
    const by = (s: string) => (noTrunc || s.length <= 45 ? s : `${s.slice(0, 44)}…`);
    ctx.stdout.write(
      table(
        ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
        rows.map((r) => [
          id(r.Id),
          human ? humanAgo(r.Created ? new Date(r.Created * 1000).toISOString() : undefined) : r.Created ? new Date(r.Created * 1000).toISOString() : 'N/A',
          by(r.CreatedBy),
          human ? humanSize(r.Size) : String(r.Size),
          r.Comment,
        ]),
      ),
    );
    return 0;
  },
};

export const commands: CommandDef[] = [diffCmd, commitCmd, exportCmd, historyCmd];
