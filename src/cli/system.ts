import os from 'node:os';
import type { CommandDef } from './command.js';
import { versionString } from '../version.js';

export const commands: CommandDef[] = [
  {
    name: 'version',
    usage: 'version',
    summary: 'Show the hull version',
    flags: [],
    maxArgs: 0,
    async run(ctx) {
      ctx.stdout.write(`${versionString()}\nOS/Arch: ${os.platform()}/${os.arch()}\nKernel: ${os.release()}\n`);
      return 0;
    },
  },
];
