/**
 * `hull vm pool`: the warm pool of restored, paused microVMs (runtime/vm/pool.ts). Setting a size
 * starts the pool's keeper (a detached hull process) if none runs, and waits until the pool is
 * full; `--size 0` drains it and waits until the keeper is gone; no flags print its state.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';
import type { CommandDef } from './command.js';

const FILL_WAIT_MS = 300_000;

async function status(root: string): Promise<Record<string, unknown>> {
  const pool = await import('../runtime/vm/pool.js');
  const c = pool.readPoolConfig(root);
  const ready = pool.readyEntries(root);
  return {
    size: c.size, memory: `${c.memMiB}m`, cpus: c.cpus,
    ready: ready.length, starting: pool.startingCount(root),
    keeper: pool.keeperAlive(root) ?? null,
    guests: ready.map((e) => ({ id: e.id, template: e.templateKey.slice(0, 12), pid: e.pid, created: e.created })),
  };
}

function describe(s: Record<string, unknown>): string {
  return `pool: ${s.ready} ready, ${s.starting} starting, size ${s.size} (${s.memory}, ${s.cpus} vCPU)${s.keeper ? '' : ', no keeper running'}\n`;
}

function keeperLogTail(root: string): string {
  try {
    return fs.readFileSync(path.join(root, 'vmpool', 'keeper.log'), 'utf8').trim().split('\n').slice(-3).join('; ');
  } catch {
    return '';
  }
}

function keeperReport(root: string): { failures: number; lastError: string | null } {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'vmpool', 'keeper.json'), 'utf8')) as { failures: number; lastError: string | null };
  } catch {
    return { failures: 0, lastError: null };
  }
}

export const commands: CommandDef[] = [
  {
    name: 'vm pool',
    usage: 'vm pool [--size N] [--memory 128m] [--cpus 1] [--format json]',
    summary: 'Keep N microVMs restored and paused, so that `hull run --rm --vm` claims one (0 drains the pool)',
    flags: [
      { name: 'size', type: 'string', value: 'N', help: 'Guests to keep ready (0: drain the pool and stop its keeper)' },
      { name: 'memory', short: 'm', type: 'string', value: 'bytes', help: 'Guest memory of the pool (default 128m; runs with another -m do not claim)' },
      { name: 'cpus', type: 'string', value: 'n', help: 'vCPUs of the pool guests (default 1)' },
      { name: 'format', short: 'f', type: 'string', help: "'json' for JSON output" },
      { name: 'keep', type: 'bool', hidden: true, help: 'Run as the pool keeper (started by hull vm pool --size)' },
    ],
    maxArgs: 0,
    async run(ctx, p) {
      const pool = await import('../runtime/vm/pool.js');
      const json = p.flags.get('format') === 'json';
      const print = (s: Record<string, unknown>) => ctx.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : describe(s));
      if (p.flags.get('keep') === true) {
        const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
        await pool.runKeeper(ctx.root, log);
        return 0;
      }
      const sizeFlag = p.flags.get('size') as string | undefined;
      if (sizeFlag === undefined) {
        if (p.flags.has('memory') || p.flags.has('cpus')) throw new HullError('INVALID_ARGUMENT', '--memory and --cpus need --size');
        print(await status(ctx.root));
        return 0;
      }
      if (!/^\d+$/.test(sizeFlag)) throw new HullError('INVALID_ARGUMENT', `invalid argument "${sizeFlag}" for "--size" flag: want a whole number >= 0`);
      const old = pool.readPoolConfig(ctx.root);
      const { parseBytes } = await import('../engine/units.js');
      const memFlag = p.flags.get('memory') as string | undefined;
      const memMiB = memFlag !== undefined ? Math.ceil(parseBytes(memFlag, '--memory') / 1048576) : old.memMiB;
      const cpuFlag = p.flags.get('cpus') as string | undefined;
      if (cpuFlag !== undefined && !/^\d+$/.test(cpuFlag)) throw new HullError('INVALID_ARGUMENT', `invalid argument "${cpuFlag}" for "--cpus" flag: a VM has a whole number of vCPUs`);
      const c = { size: Number(sizeFlag), memMiB, cpus: cpuFlag !== undefined ? Number(cpuFlag) : old.cpus };
      pool.validatePoolConfig(c);
      if (c.size === 0) {
        if (!fs.existsSync(pool.poolDir(ctx.root))) {
          print(await status(ctx.root));
          return 0;
        }
        pool.writePoolConfig(ctx.root, c);
        const k = pool.keeperAlive(ctx.root);
        if (k) process.kill(Number(k.split(':')[0]), 'SIGTERM');
        for (const end = Date.now() + 60_000; pool.keeperAlive(ctx.root); ) {
          if (Date.now() > end) throw new HullError('UNAVAILABLE', `the pool keeper did not drain within 60 s (${keeperLogTail(ctx.root)})`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // a keeper killed outright left its guests: drain them here
        for (const o of pool.orphans(ctx.root)) await pool.stopGuest(o.dir, o.entry);
        print(await status(ctx.root));
        return 0;
      }
      // the template must exist (and the host run VMs at all) before a keeper is worth starting
      await pool.poolTemplate(ctx.root, await pool.poolShape(c));
      pool.writePoolConfig(ctx.root, c);
      if (!pool.keeperAlive(ctx.root)) {
        // one line per guest: a new keeper starts a new log once the last one passed 1 MiB
        const logPath = path.join(pool.poolDir(ctx.root), 'keeper.log');
        if ((fs.statSync(logPath, { throwIfNoEntry: false })?.size ?? 0) > 1 << 20) fs.renameSync(logPath, `${logPath}.1`);
        const logFd = fs.openSync(logPath, 'a', 0o600);
        try {
          const k = spawn(process.execPath, [process.argv[1]!, '--root', ctx.root, 'vm', 'pool', '--keep'], { detached: true, stdio: ['ignore', logFd, logFd] });
          k.on('error', () => undefined);
          k.unref();
        } finally {
          fs.closeSync(logFd);
        }
      } // else the keeper sees pool.json change (it watches the pool directory)
      for (const t0 = Date.now(); ;) {
        const s = await status(ctx.root);
        if ((s.ready as number) >= c.size && s.keeper) {
          print(s);
          return 0;
        }
        const k = keeperReport(ctx.root);
        if (k.failures >= 3) throw new HullError('UNAVAILABLE', `the pool cannot start guests (${k.failures} failures in a row): ${k.lastError}`);
        if (!s.keeper && Date.now() - t0 > 10_000) throw new HullError('UNAVAILABLE', `the pool keeper is not running (${keeperLogTail(ctx.root) || 'no log'})`);
        if (Date.now() - t0 > FILL_WAIT_MS) throw new HullError('UNAVAILABLE', `the pool did not fill within ${FILL_WAIT_MS / 1000} s: ${describe(s).trim()} (${keeperLogTail(ctx.root)})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  },
];
