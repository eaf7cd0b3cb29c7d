/**
 * What a build reports, as plain data, and its renderings: docker's classic builder text
 * (`Step 2/5 : RUN ...`, ` ---> Using cache`, ` ---> 3f2a...`), BuildKit's `--progress plain`
 * lines (`#3 [2/5] RUN ...`, `#3 CACHED`, `#3 DONE 0.4s`), and the JSON message stream of the
 * Engine API (`{"stream": ...}`, `{"aux": {"ID": ...}}`, `{"errorDetail": ...}`).
 */
export type BuildEvent =
  | { type: 'context'; bytes: number }
  | { type: 'step'; n: number; total: number; text: string }
  | { type: 'cached' }
  | { type: 'running'; container: string }
  | { type: 'output'; stream: 'stdout' | 'stderr'; data: Buffer }
  | { type: 'removed'; container: string }
  | { type: 'image'; id: string; ms: number }
  | { type: 'triggers'; count: number }
  | { type: 'warning'; text: string }
  | { type: 'built'; id: string }
  | { type: 'tagged'; tag: string };

export type Sink = (e: BuildEvent) => void;

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

function humanBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  const u = ['kB', 'MB', 'GB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < u.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(3).replace(/\.?0+$/, '')}${u[i]}`;
}

/** docker's classic builder output, one string per event ('' for none). */
export function classicText(e: BuildEvent): string {
  switch (e.type) {
    case 'context':
      return `Sending build context to Docker daemon  ${humanBytes(e.bytes)}\n`;
    case 'step':
      return `Step ${e.n}/${e.total} : ${e.text}\n`;
    case 'cached':
      return ' ---> Using cache\n';
    case 'running':
      return ` ---> Running in ${short(e.container)}\n`;
    case 'output':
      return e.data.toString('utf8');
    case 'removed':
      return `Removing intermediate container ${short(e.container)}\n`;
    case 'image':
      return ` ---> ${short(e.id)}\n`;
    case 'triggers':
      return `# Executing ${e.count} build trigger${e.count === 1 ? '' : 's'}\n`;
    case 'warning':
      return `[Warning] ${e.text}\n`;
    case 'built':
      return `Successfully built ${short(e.id)}\n`;
    case 'tagged':
      return `Successfully tagged ${e.tag}\n`;
  }
}

/** BuildKit's `--progress plain` rendering; keeps the step number and its start time. */
export function plainRenderer(write: (s: string) => void): Sink {
  let n = 0;
  let started = 0;
  let cached = false;
  let pending = '';
  const flush = () => {
    if (pending) write(`#${n} ${((Date.now() - started) / 1000).toFixed(3)} ${pending}\n`);
    pending = '';
  };
  return (e) => {
    switch (e.type) {
      case 'context':
        write(`#0 transferring context: ${humanBytes(e.bytes)} done\n`);
        break;
      case 'step':
        n = e.n;
        started = Date.now();
        cached = false;
        write(`\n#${n} [${e.n}/${e.total}] ${e.text}\n`);
        break;
      case 'cached':
        cached = true;
        write(`#${n} CACHED\n`);
        break;
      case 'output': {
        const lines = (pending + e.data.toString('utf8')).split('\n');
        pending = lines.pop()!;
        for (const l of lines) write(`#${n} ${((Date.now() - started) / 1000).toFixed(3)} ${l}\n`);
        break;
      }
      case 'image':
        flush();
        if (!cached) write(`#${n} DONE ${(e.ms / 1000).toFixed(1)}s\n`);
        break;
      case 'warning':
        write(`WARNING: ${e.text}\n`);
        break;
      case 'built':
        write(`\n#${n + 1} writing image ${e.id} done\n`);
        break;
      case 'tagged':
        write(`#${n + 1} naming to ${e.tag} done\n`);
        break;
      default:
        break;
    }
  };
}

/** Engine API build messages of one event (docker sends the image id as `aux` before the text). */
export function apiMessages(e: BuildEvent): Record<string, unknown>[] {
  const s = classicText(e);
  const out: Record<string, unknown>[] = e.type === 'built' ? [{ aux: { ID: e.id } }] : [];
  if (s) out.push({ stream: s });
  return out;
}
