/**
 * The program conmon runs after a detached container exited:
 *   node exit-hook.js ROOT ID RUN
 * It records the exit (code, OOM kill) in SQLite before the cgroup is released, and removes
 * --rm containers. Errors go to <root>/containers/<id>/exit-hook.err (conmon discards stderr).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Engine } from './engine.js';

async function main(root: string, id: string, run: number): Promise<void> {
  const engine = Engine.open(root);
  try {
    await engine.finalizeExit(id, run);
  } finally {
    engine.close();
  }
}

const [root, id, run] = process.argv.slice(2);
if (!root || !id || !/^[0-9a-f]{64}$/.test(id) || !run || !/^\d+$/.test(run)) {
  process.stderr.write('usage: exit-hook.js ROOT CONTAINER-ID RUN\n');
  process.exitCode = 2;
} else {
  main(root, id, Number(run)).catch((e: unknown) => {
    const msg = `${new Date().toISOString()} ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
    try {
      fs.appendFileSync(path.join(root, 'containers', id, 'exit-hook.err'), msg);
    } catch {
      process.stderr.write(msg);
    }
    process.exitCode = 1;
  });
}
