/** `hull serve`: the Docker Engine API on a unix socket (src/api/). */
import { flagStr } from './args.js';
import type { CommandDef } from './command.js';

const serveCmd: CommandDef = {
  name: 'serve',
  usage: 'serve [OPTIONS]',
  summary: 'Serve the Docker Engine API on a unix socket (DOCKER_HOST=unix://PATH docker ... drives hull)',
  flags: [
    { name: 'socket', short: 'H', type: 'string', value: 'path', help: 'Unix socket to listen on (default /run/hull/docker.sock; mode 0660, group hull when it exists)' },
    { name: 'group', type: 'string', value: 'name', help: "Group owning the socket (default 'hull' when that group exists)" },
    { name: 'debug-requests', type: 'bool', help: 'Print one line per request to stderr' },
  ],
  maxArgs: 0,
  async run(ctx, p) {
    const { startApiServer, DEFAULT_SOCKET } = await import('../api/server.js');
    let socket = flagStr(p, 'socket') ?? DEFAULT_SOCKET;
    if (socket.startsWith('unix://')) socket = socket.slice('unix://'.length);
    const debug = p.flags.get('debug-requests') === true;
    const server = await startApiServer({
      root: ctx.root,
      socket,
      group: flagStr(p, 'group'),
      onRequest: debug ? (m, path, status) => ctx.stderr.write(`${new Date().toISOString()} ${m} ${path} ${status}\n`) : undefined,
    });
    ctx.stderr.write(`hull serve: API listening on unix://${server.socket} (root ${ctx.root})\n`);
    // One failed request must not take the server (and every attached client) down.
    const onUnhandled = (e: unknown) => ctx.stderr.write(`hull serve: unhandled error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.on('unhandledRejection', onUnhandled);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    process.off('unhandledRejection', onUnhandled);
    ctx.stderr.write('hull serve: stopped (containers keep running)\n');
    // Anything still pending (a pull in flight) must not keep a stopped server alive.
    setTimeout(() => process.exit(0), 2000).unref();
    return 0;
  },
};

export const commands: CommandDef[] = [serveCmd];
