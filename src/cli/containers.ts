import type { CommandDef } from './command.js';

/** Commands of this module are added as their issue is built; routes in main.ts point here. */
export const commands: CommandDef[] = [];
