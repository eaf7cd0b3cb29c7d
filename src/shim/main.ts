/**
 * containerd-shim-hull-v2: hull's VM wall as a containerd runtime (runtime_type
 * io.containerd.hull.v2). bin/containerd-shim-hull-v2 runs this (from the dist/shim.cjs bundle
 * when built). Actions: start, delete (src/shim/launch.ts) and serve, the long-lived process of
 * one pod: the ttrpc task service on <pod dir>/ttrpc.sock, QEMU and virtiofsd as its children.
 * Its log goes to the bundle's `log` fifo, which containerd copies to its own log.
 */
import fs from 'node:fs';
import { errorMessage } from '../errors.js';
import { parseShimArgs, podPaths, type ShimFlags } from './args.js';
import { deleteCommand, startCommand } from './launch.js';
import { checkSpec, groupOf } from './oci-guest.js';
import { removeTree } from './pod.js';
import { Publisher } from './publisher.js';
import { ShimService } from './service.js';
import { taskService } from './task-api.js';
import { TtrpcServer } from './ttrpc-server.js';
import { version } from '../version.js';

function openLog(): (msg: string) => void {
  let fd = -1;
  try {
    fd = fs.openSync('log', fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    fd = -1; // no fifo (not started by containerd): no log
  }
  return (msg) => {
    if (fd < 0) return;
    const line = `time="${new Date().toISOString()}" level=info msg=${JSON.stringify(msg)} runtime=io.containerd.hull.v2 pid=${process.pid}\n`;
    try {
      fs.writeSync(fd, line);
    } catch {
      // fifo full or closed: the line is dropped rather than blocking the shim
    }
  };
}

async function serve(f: ShimFlags): Promise<void> {
  const report = (text: string) => {
    try {
      fs.writeSync(3, `${text}\n`);
      fs.closeSync(3);
    } catch {
      // not started by `start` (no fd 3)
    }
  };
  const log = openLog();
  const spec = checkSpec(JSON.parse(fs.readFileSync('config.json', 'utf8')));
  const p = podPaths(f.address, f.namespace, groupOf(f.id, spec));
  const publisher = new Publisher(process.env.TTRPC_ADDRESS ?? '', f.namespace, log);
  let server: TtrpcServer | undefined;
  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    void (async () => {
      await server?.close();
      fs.rmSync(p.socket, { force: true });
      try {
        removeTree(p.dir);
      } catch (e) {
        log(`leaving ${p.dir}: ${errorMessage(e)}`);
      }
      publisher.close();
      log(`shim exits (${code})`);
      process.exit(code);
    })();
  };
  const svc = new ShimService({
    namespace: f.namespace, podDir: p.dir, podKey: p.key, publisher, log,
    onShutdown: () => setTimeout(() => exit(0), 20),
  });
  server = new TtrpcServer(taskService(svc, () => setTimeout(() => exit(0), 20), f.debug ? log : undefined), (e) => log(`ttrpc: ${errorMessage(e)}`));
  try {
    await server.listen(p.socket);
  } catch (e) {
    report(`${(e as NodeJS.ErrnoException).code ?? ''} ${errorMessage(e)}`);
    process.exit(1);
  }
  process.on('SIGPIPE', () => undefined);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping the pod`);
      void svc.shutdown(true).finally(() => exit(0));
    });
  }
  process.on('uncaughtException', (e) => {
    log(`uncaught: ${e.stack ?? e.message}`);
    void svc.shutdown(true).finally(() => exit(1));
  });
  log(`hull shim ${version()} serving ${p.socket} for namespace ${f.namespace}`);
  report('ok');
}

export async function main(argv: string[]): Promise<number> {
  let f: ShimFlags;
  try {
    f = parseShimArgs(argv);
  } catch (e) {
    process.stderr.write(`containerd-shim-hull-v2: ${errorMessage(e)}\n`);
    return 2;
  }
  if (f.version) {
    process.stdout.write(`containerd-shim-hull-v2:\n  Version:  ${version()}\n`);
    return 0;
  }
  try {
    switch (f.action) {
      case 'start':
        process.stdout.write(await startCommand(f));
        return 0;
      case 'delete':
        process.stdout.write(await deleteCommand(f));
        return 0;
      case 'serve':
        await serve(f);
        return -1; // keeps running
      default:
        process.stderr.write(`containerd-shim-hull-v2: unknown action ${JSON.stringify(f.action)} (start, delete)\n`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`io.containerd.hull.v2: ${errorMessage(e)}`);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => {
  // stdout may be a pipe containerd reads: let it drain before leaving
  if (code >= 0) process.stdout.write('', () => process.exit(code));
});
