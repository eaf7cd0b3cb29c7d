/** Image commands: import, load, save, images, tag, rmi, image inspect, image prune. */
import { labelsMatch } from '../engine/filters.js';
import { invalid, notFound } from '../errors.js';
import { shortId } from '../oci/digest.js';
import { type DeleteItem, ImageStore } from '../images/store.js';
import { imageRows, inspectImage } from '../images/inspect.js';
import { flagBool, flagList, flagStr } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { humanAgo, humanSize, table } from './output.js';

function printDeleted(ctx: CliContext, items: DeleteItem[]): void {
  for (const it of items) ctx.stdout.write('Untagged' in it ? `Untagged: ${it.Untagged}\n` : `Deleted: ${it.Deleted}\n`);
}

/** Go-template subset for --format: {{.Field.Sub}}, {{json .Field}}, {{.Field}} joined like Go prints. */
export function renderTemplate(tpl: string, data: unknown): string {
  const out = tpl.replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, json: string | undefined, p: string) => {
    let v: unknown = data;
    for (const k of p === '' ? [] : p.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (json) return JSON.stringify(v ?? null);
    return goString(v);
  });
  return out.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

function goString(v: unknown): string {
  if (v === undefined || v === null) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.entries(v as object).map(([k, x]) => `${k}:${goString(x)}`).join(' ')}]`;
  return String(v);
}

/** Docker's CreatedAt: '2024-05-01 10:00:00 +0000 UTC'. */
function dockerTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  return `${new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} +0000 UTC`;
}

const importCmd: CommandDef = {
  name: 'import',
  usage: 'import [OPTIONS] file|- [REPOSITORY[:TAG]]',
  summary: 'Import the contents from a tarball to create a filesystem image',
  flags: [
    { name: 'change', short: 'c', type: 'list', value: 'list', help: 'Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)' },
    { name: 'message', short: 'm', type: 'string', help: 'Set commit message for imported image' },
    { name: 'platform', type: 'string', help: 'Set platform (linux/ARCH) of the image (default: the host)' },
  ],
  minArgs: 1,
  maxArgs: 2,
  async run(ctx, p) {
    const [file, ref] = p.args as [string, string | undefined];
    let architecture: string | undefined;
    const platform = flagStr(p, 'platform');
    if (platform) {
      const m = /^linux\/([a-z0-9]+)$/.exec(platform);
      if (!m) throw invalid(`--platform ${JSON.stringify(platform)}: expected linux/ARCH`);
      architecture = m[1];
    }
    const { importRootfs } = await import('../images/import.js');
    const { openInput } = await import('../images/stream-util.js');
    const input = openInput(file, ctx.stdin, 'import: file');
    const store = ImageStore.open(ctx.root);
    const img = await importRootfs(store, {
      input,
      sourceName: file,
      reference: ref,
      changes: flagList(p, 'change'),
      message: flagStr(p, 'message'),
      architecture,
    });
    ctx.stdout.write(`${img.id}\n`);
    return 0;
  },
};

const loadCmd: CommandDef = {
  name: 'load',
  usage: 'load [OPTIONS]',
  summary: 'Load an image from a tar archive (docker save or OCI layout) or STDIN',
  flags: [
    { name: 'input', short: 'i', type: 'string', value: 'file', help: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress the load output' },
  ],
  maxArgs: 0,
  async run(ctx, p) {
    const file = flagStr(p, 'input') ?? '-';
    if (file === '-' && ctx.stdin.isTTY) throw invalid('requested load from stdin, but stdin is empty (use -i FILE)');
    const { loadArchive } = await import('../images/load.js');
    const { openInput } = await import('../images/stream-util.js');
    const store = ImageStore.open(ctx.root);
    const loaded = await loadArchive(store, openInput(file, ctx.stdin, 'load: input'), { what: file === '-' ? 'archive on stdin' : `archive ${file}` });
    if (!flagBool(p, 'quiet')) {
      for (const l of loaded) {
        if (l.tags.length === 0) ctx.stdout.write(`Loaded image ID: ${l.image.id}\n`);
        for (const t of l.tags) ctx.stdout.write(`Loaded image: ${t}\n`);
      }
    }
    return 0;
  },
};

const saveCmd: CommandDef = {
  name: 'save',
  usage: 'save [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Save one or more images to an OCI image-layout tar archive (with docker manifest.json) (streamed to STDOUT by default)',
  flags: [{ name: 'output', short: 'o', type: 'string', value: 'file', help: 'Write to a file, instead of STDOUT' }],
  minArgs: 1,
  async run(ctx, p) {
    const out = flagStr(p, 'output');
    if (!out && ctx.stdout.isTTY) throw invalid('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    const { saveArchive } = await import('../images/save.js');
    const store = ImageStore.open(ctx.root);
    await saveArchive(store, p.args, out ?? ctx.stdout);
    return 0;
  },
};

const imagesCmd: CommandDef = {
  name: 'images',
  usage: 'images [OPTIONS] [REPOSITORY[:TAG]]',
  summary: 'List images',
  flags: [
    { name: 'all', short: 'a', type: 'bool', help: 'Show all images (default hides intermediate images of hull build)' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
    { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { name: 'digests', type: 'bool', help: 'Show digests' },
    { name: 'filter', short: 'f', type: 'list', value: 'filter', help: 'Filter output: dangling=true|false, reference=PATTERN, label=KEY[=VALUE]' },
    { name: 'format', type: 'string', value: 'string', help: "'table', 'json', or a Go-template subset ({{.ID}} {{.Repository}} ...)" },
  ],
  maxArgs: 1,
  async run(ctx, p) {
    const store = ImageStore.open(ctx.root);
    const now = Date.now();
    const noTrunc = flagBool(p, 'no-trunc');
    let dangling: boolean | undefined;
    const refPatterns: RegExp[] = [];
    const labels: string[] = [];
    for (const f of flagList(p, 'filter')) {
      const [k, v = ''] = f.split(/=(.*)/s);
      if (k === 'dangling') {
        if (!['true', 'false', '1', '0'].includes(v)) throw invalid(`invalid filter 'dangling=${v}'`);
        dangling = v === 'true' || v === '1';
      } else if (k === 'reference') refPatterns.push(globRe(v));
      else if (k === 'label') labels.push(v);
      else throw invalid(`invalid filter '${k}'`);
    }
    if (p.args[0]) {
      const a = p.args[0];
      refPatterns.push(globRe(a.includes(':') && a.lastIndexOf(':') > a.lastIndexOf('/') ? a : `${a}:*`));
    }
    const rows = store
      .list({ all: flagBool(p, 'all') })
      .filter((img) => dangling === undefined || (img.tags.length === 0) === dangling)
      .filter((img) => labelsMatch(img.config.config?.Labels ?? {}, labels))
      .flatMap((img) => imageRows(img, store.addedAt(img.id)))
      .filter((r) => refPatterns.length === 0 || refPatterns.some((re) => re.test(`${r.Repository}:${r.Tag}`) || re.test(r.Repository)));
    const view = rows.map((r) => ({
      Containers: 'N/A',
      CreatedAt: dockerTime(r.CreatedAt),
      CreatedSince: humanAgo(r.CreatedAt, now),
      Digest: r.Digest,
      ID: noTrunc ? r.ID : shortId(r.ID),
      Repository: r.Repository,
      SharedSize: 'N/A',
      Size: humanSize(r.Size),
      Tag: r.Tag,
      UniqueSize: 'N/A',
      VirtualSize: humanSize(r.Size),
    }));
    if (flagBool(p, 'quiet')) {
      const seen = new Set<string>();
      for (const v of view) if (!seen.has(v.ID)) (seen.add(v.ID), ctx.stdout.write(`${v.ID}\n`));
      return 0;
    }
    const fmt = flagStr(p, 'format');
    if (fmt === 'json') {
      for (const v of view) ctx.stdout.write(`${JSON.stringify(v)}\n`);
      return 0;
    }
    if (fmt && fmt !== 'table') {
      for (const v of view) ctx.stdout.write(`${renderTemplate(fmt.replace(/^table\s+/, ''), v)}\n`);
      return 0;
    }
    const digests = flagBool(p, 'digests');
    const headers = digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
    ctx.stdout.write(
      table(
        headers,
        view.map((v) => {
          const id = noTrunc ? v.ID : v.ID.replace(/^sha256:/, '');
          return digests ? [v.Repository, v.Tag, v.Digest, id, v.CreatedSince, v.Size] : [v.Repository, v.Tag, id, v.CreatedSince, v.Size];
        }),
      ),
    );
    return 0;
  },
};

function globRe(pattern: string): RegExp {
  const esc = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

const inspectCmd: CommandDef = {
  name: 'image inspect',
  usage: 'image inspect [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Display detailed information on one or more images',
  flags: [{ name: 'format', short: 'f', type: 'string', value: 'string', help: 'Go-template subset ({{.Id}}, {{json .Config}}) or json' }],
  minArgs: 1,
  async run(ctx, p) {
    const store = ImageStore.open(ctx.root);
    const found: object[] = [];
    let missing: string | undefined;
    for (const ref of p.args) {
      const img = store.tryResolve(ref);
      if (!img) {
        missing ??= ref;
        continue;
      }
      const dirs = img.layers.filter((l) => store.t.layer(l.diffId)).map((l) => store.layerDir(l.diffId));
      found.push(inspectImage(img, { layerDirs: dirs, addedAt: store.addedAt(img.id) }));
    }
    const fmt = flagStr(p, 'format');
    if (fmt && fmt !== 'json') for (const f of found) ctx.stdout.write(`${renderTemplate(fmt, f)}\n`);
    else ctx.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
    if (missing !== undefined) throw notFound(`No such image: ${missing}`);
    return 0;
  },
};

const tagCmd: CommandDef = {
  name: 'tag',
  usage: 'tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  flags: [],
  minArgs: 2,
  maxArgs: 2,
  async run(ctx, p) {
    ImageStore.open(ctx.root).tag(p.args[0]!, p.args[1]!);
    return 0;
  },
};

const rmiCmd: CommandDef = {
  name: 'rmi',
  usage: 'rmi [OPTIONS] IMAGE [IMAGE...]',
  summary: 'Remove one or more images',
  flags: [
    { name: 'force', short: 'f', type: 'bool', help: 'Force removal of the image (an image a container uses loses its names but stays)' },
    { name: 'no-prune', type: 'bool', help: 'Accepted for compatibility (hull keeps no untagged parents)' },
  ],
  minArgs: 1,
  async run(ctx, p) {
    const store = ImageStore.open(ctx.root);
    let failed = false;
    for (const ref of p.args) {
      try {
        printDeleted(ctx, store.remove(ref, { force: flagBool(p, 'force') }));
      } catch (e) {
        failed = true;
        ctx.stderr.write(`Error response from daemon: ${(e as Error).message}\n`);
      }
    }
    return failed ? 1 : 0;
  },
};

const pruneCmd: CommandDef = {
  name: 'image prune',
  usage: 'image prune [OPTIONS]',
  summary: 'Remove unused images (dangling ones; with -a every image no container uses)',
  flags: [
    { name: 'all', short: 'a', type: 'bool', help: 'Remove all unused images, not just dangling ones' },
    { name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation (hull never prompts)' },
  ],
  maxArgs: 0,
  async run(ctx, p) {
    const { deleted, reclaimed } = ImageStore.open(ctx.root).prune({ all: flagBool(p, 'all') });
    if (deleted.length > 0) {
      ctx.stdout.write('Deleted Images:\n');
      for (const it of deleted) ctx.stdout.write('Untagged' in it ? `untagged: ${it.Untagged}\n` : `deleted: ${it.Deleted}\n`);
      ctx.stdout.write('\n');
    }
    ctx.stdout.write(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
    return 0;
  },
};

/** `hull image load|save|import|tag` are the same commands under the group (main.ts looks them up by full name). */
const grouped = [importCmd, loadCmd, saveCmd, tagCmd].map((c) => ({ ...c, name: `image ${c.name}`, usage: `image ${c.usage}` }));

export const commands: CommandDef[] = [importCmd, loadCmd, saveCmd, imagesCmd, inspectCmd, tagCmd, rmiCmd, pruneCmd, ...grouped];
