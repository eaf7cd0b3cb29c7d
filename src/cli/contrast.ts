import readline from 'node:readline/promises';
import { HullError, isHullError } from '../errors.js';
import { flagBool, flagStr, type Parsed } from './args.js';
import type { CliContext, CommandDef } from './command.js';
import { advise, renderAdvice, type AdviseInput } from '../contrast/advise.js';
import { describeMachine } from '../contrast/machine.js';
import { findExecutable } from '../contrast/hostfacts.js';
import { renderTable } from '../contrast/report-table.js';
import { contrast, renderHtml, reportJson, writeReportFile } from '../contrast/setup.js';
import { loadLastContrast } from '../contrast/store.js';
import { parseOnly } from '../contrast/dimensions.js';
import { parseVmAccel } from '../contrast/walls.js';
import { parseCount, parseDuration, parseFraction, parsePeers, parseSize, parseWalls } from '../contrast/units.js';

async function runContrastCommand(ctx: CliContext, p: Parsed): Promise<number> {
  const image = p.args[0] ?? 'busybox';
  const quick = flagBool(p, 'quick');
  const runs = parseCount(flagStr(p, 'runs') ?? (quick ? '3' : '10'), '--runs', 1, 1000);
  const budget = flagStr(p, 'density-budget');
  const densityFlag = flagStr(p, 'density');
  const density = densityFlag !== undefined ? parseCount(densityFlag, '--density', 0, 1000) : budget ? 0 : quick ? 3 : 10;
  const only = parseOnly(flagStr(p, 'only'));
  const idleWindowMs = parseDuration(flagStr(p, 'idle-window') ?? (quick ? '5s' : '15s'), '--idle-window');
  const densityBudgetBytes = budget ? parseSize(budget, '--density-budget') : null;
  const memoryBytes = parseSize(flagStr(p, 'memory') ?? '128m', '--memory');
  if (memoryBytes < 16 * 1048576) throw new HullError('INVALID_ARGUMENT', 'invalid argument for "--memory" flag: idle instances need at least 16m');
  const walls = parseWalls(flagStr(p, 'isolation') ?? 'container,vm');
  const peers = parsePeers(flagStr(p, 'peers') ?? 'auto');
  const vmAccelFlag = flagStr(p, 'vm-accel');
  const vmAccel = vmAccelFlag === undefined ? undefined : parseVmAccel(vmAccelFlag);
  if (vmAccel && !walls.includes('vm')) throw new HullError('INVALID_ARGUMENT', '--vm-accel applies to the VM wall: add vm to --isolation');
  const jsonFile = flagStr(p, 'json');
  const htmlFile = flagStr(p, 'html');
  const quiet = flagBool(p, 'quiet');
  const progress = (l: string) => {
    if (!quiet) ctx.stderr.write(`[contrast] ${l}\n`);
  };

  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!ac.signal.aborted) progress(`${sig}: stopping, removing every instance started`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const machine = describeMachine();
    progress(`${machine.cpuModel}, ${machine.cores} cores, kernel ${machine.kernel}, ${machine.kvm.reason}`);
    const rep = await contrast({
      root: ctx.root,
      image,
      runs,
      density: density || null,
      densityBudgetBytes,
      memoryBytes,
      maxInstances: 256,
      settleMs: 1000,
      only,
      cpu: { idleWindowMs, settleMs: 1000, memoryBytes, taskMiB: quick ? 8 : 32, taskRounds: quick ? 1 : 2, taskReps: 2 },
      network: { seconds: quick ? 1 : 2, rounds: quick ? 1 : 2 },
      disk: { seqMiB: quick ? 16 : 32, smallBlocks: quick ? 512 : 2048, rounds: quick ? 1 : 2 },
      walls,
      peers,
      vmAccel,
      machine,
      progress,
      signal: ac.signal,
    });
    ctx.stdout.write(renderTable(rep));
    if (jsonFile) writeReportFile(jsonFile, reportJson(rep));
    if (htmlFile) writeReportFile(htmlFile, renderHtml(rep));
    return 0;
  } catch (e) {
    if (ac.signal.aborted && isHullError(e, 'UNAVAILABLE')) {
      ctx.stderr.write('hull: contrast interrupted; every instance it started was removed\n');
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function ask(ctx: CliContext): Promise<AdviseInput> {
  const rl = readline.createInterface({ input: ctx.stdin, output: ctx.stderr, terminal: false });
  // Lines are buffered by the iterator, so answers typed ahead (or pasted) are not lost.
  const lines = rl[Symbol.asyncIterator]();
  const question = async (q: string) => {
    ctx.stderr.write(q);
    const r = await lines.next();
    if (r.done) throw new HullError('INVALID_ARGUMENT', 'advise: the input ended before every question was answered');
    return String(r.value).trim();
  };
  try {
    const yes = async (q: string) => /^y/i.test(await question(`${q} [y/N] `));
    const untrusted = await yes('Does the workload run code you do not trust?');
    const tenantsS = (await question('How many tenants share this host? [1] ')) || '1';
    const kernel = await yes('Does it need something from its kernel the host does not give (a version, a module, sysctls)?');
    const needsKernel = kernel ? (await question('What does it need? ')) || 'an own kernel' : '';
    const sb = await question('Start-up budget (e.g. 200ms; empty for none): ');
    const mb = await question('Host memory budget for all instances (e.g. 2g; empty for none): ');
    const inst = (await question('How many instances at once? [1] ')) || '1';
    return {
      untrusted,
      tenants: parseCount(tenantsS, 'tenants', 1, 1_000_000),
      needsKernel,
      startupBudgetMs: sb ? parseDuration(sb, 'start-up budget') : null,
      memoryBudgetBytes: mb ? parseSize(mb, 'memory budget') : null,
      instances: parseCount(inst, 'instances', 1, 1_000_000),
    };
  } finally {
    rl.close();
  }
}

const ADVISE_FLAGS = ['untrusted', 'tenants', 'needs-kernel', 'startup-budget', 'memory-budget', 'instances', 'cpu-bound', 'io-bound', 'latency-budget', 'idle-ratio'];

async function runAdvise(ctx: CliContext, p: Parsed): Promise<number> {
  const interactive = ctx.stdin.isTTY === true && !ADVISE_FLAGS.some((f) => p.flags.has(f)) && !flagBool(p, 'json');
  const input: AdviseInput = interactive
    ? await ask(ctx)
    : {
        untrusted: flagBool(p, 'untrusted'),
        tenants: parseCount(flagStr(p, 'tenants') ?? '1', '--tenants', 1, 1_000_000),
        needsKernel: (flagStr(p, 'needs-kernel') ?? '').trim(),
        startupBudgetMs: flagStr(p, 'startup-budget') ? parseDuration(flagStr(p, 'startup-budget')!, '--startup-budget') : null,
        memoryBudgetBytes: flagStr(p, 'memory-budget') ? parseSize(flagStr(p, 'memory-budget')!, '--memory-budget') : null,
        instances: parseCount(flagStr(p, 'instances') ?? '1', '--instances', 1, 1_000_000),
        cpuBound: flagBool(p, 'cpu-bound'),
        ioBound: flagBool(p, 'io-bound'),
        latencyBudgetMs: flagStr(p, 'latency-budget') ? parseDuration(flagStr(p, 'latency-budget')!, '--latency-budget') : null,
        idleRatio: flagStr(p, 'idle-ratio') ? parseFraction(flagStr(p, 'idle-ratio')!, '--idle-ratio') : null,
      };
  const a = advise(input, loadLastContrast(ctx.root), findExecutable('runsc') !== undefined);
  ctx.stdout.write(flagBool(p, 'json') ? `${JSON.stringify(a, null, 2)}\n` : renderAdvice(a));
  return 0;
}

export const commands: CommandDef[] = [
  {
    name: 'contrast',
    usage: 'contrast [OPTIONS] [IMAGE]',
    summary:
      'Measure both walls on this machine with IMAGE (default busybox): start-up, memory per idle instance, density, isolation, CPU, disk, network and boot modes, with peers installed (podman, crun, runc) and the bare host as reference rows',
    flags: [
      { name: 'runs', type: 'string', value: 'int', help: 'Measured start-ups per wall, after 1 warm-up (default 10)' },
      { name: 'density', type: 'string', value: 'int', help: 'Idle instances to start in parallel for the density figure; 0 skips it (default 10)' },
      { name: 'density-budget', type: 'string', value: 'bytes', help: 'Instead: start idle instances until they take this much host memory (e.g. 2g)' },
      { name: 'memory', type: 'string', value: 'bytes', help: 'Memory given to each idle instance (default 128m)' },
      { name: 'isolation', type: 'string', value: 'list', help: 'Walls to measure, comma-separated (default container,vm)' },
      { name: 'vm-accel', type: 'string', value: 'list', help: 'The VM wall\'s accelerator: auto (default), kvm or tcg; tcg,kvm measures both side by side as walls vm-tcg and vm-kvm (KVM where it is unusable here is left out, with the reason)' },
      { name: 'peers', type: 'string', value: 'list', help: "Reference rows: auto (every one installed), none, or a list of podman,crun,runc (default auto)" },
      { name: 'only', type: 'string', value: 'list', help: 'Dimensions to measure, comma-separated: startup,memory,density,isolation,cpu,disk,network,boot (default all)' },
      { name: 'quick', type: 'bool', help: 'A shorter run: 3 start-ups, 3 instances for density, a 5s idle window, smaller CPU and disk tasks' },
      { name: 'idle-window', type: 'string', value: 'duration', help: 'How long idle CPU is measured (default 15s; 5s with --quick)' },
      { name: 'json', type: 'string', value: 'file', help: 'Write the raw figures, the machine and how each was measured as JSON' },
      { name: 'html', type: 'string', value: 'file', help: 'Write a self-contained HTML page with charts' },
      { name: 'quiet', short: 'q', type: 'bool', help: 'No progress lines' },
    ],
    maxArgs: 1,
    run: runContrastCommand,
  },
  {
    name: 'advise',
    usage: 'advise [OPTIONS]',
    summary: 'Say which wall fits a workload (container, gVisor or VM) and why, quoting the last contrast on this machine; asks on a terminal when no flags are given',
    flags: [
      { name: 'untrusted', type: 'bool', help: 'The workload runs code you do not trust' },
      { name: 'tenants', type: 'string', value: 'int', help: 'Tenants sharing the host (default 1)' },
      { name: 'needs-kernel', type: 'string', value: 'string', help: 'Something the workload needs from its kernel (a version, a module, ...)' },
      { name: 'startup-budget', type: 'string', value: 'duration', help: 'Longest acceptable start-up, e.g. 200ms or 1.5s' },
      { name: 'memory-budget', type: 'string', value: 'bytes', help: 'Host memory all instances may take together, e.g. 2g' },
      { name: 'instances', type: 'string', value: 'int', help: 'Instances running at once (default 1)' },
      { name: 'cpu-bound', type: 'bool', help: 'The workload is CPU-bound: weigh the measured compute speed inside each wall' },
      { name: 'io-bound', type: 'bool', help: 'The workload is I/O-bound: weigh the measured volume write speed' },
      { name: 'latency-budget', type: 'string', value: 'duration', help: 'Longest acceptable TCP round trip (p99) to an instance, e.g. 1ms' },
      { name: 'idle-ratio', type: 'string', value: 'fraction', help: 'Fraction of the time instances are idle (e.g. 0.9): weighs the host CPU an idle instance burns' },
      { name: 'json', type: 'bool', help: 'Print the advice as JSON' },
    ],
    maxArgs: 0,
    run: runAdvise,
  },
];
