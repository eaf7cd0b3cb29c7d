import type { FlagSpec, Parsed } from './args.js';

/** What every command gets: the resolved state root and the process streams. */
export interface CliContext {
  root: string;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

export interface CommandDef {
  /** Name as typed: 'run', 'image inspect'. */
  name: string;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Stop flag parsing at the first positional (run IMAGE CMD...). */
  stopAtPositional?: boolean;
  minArgs?: number;
  maxArgs?: number;
  /** Exit code used when the command fails with a HullError (docker: 125 for run/create/start, 1 otherwise). */
  failureExit?: number;
  /** Returns the process exit code. */
  run(ctx: CliContext, p: Parsed): Promise<number>;
}

/** A module of commands, loaded only when one of its commands is invoked. */
export type CommandModule = { commands: CommandDef[] };
