/**
 * A container's life as one state machine: the states docker reports, the operations that move
 * between them, and each operation's precondition, written once. The engine (CLI, library,
 * `hull serve`, exit hooks) asks `admit(op, row)` before it acts, so every door gives docker's
 * answer for the same state.
 *
 *                 start                 exit / stop / kill
 *   created ----------------> running --------------------> exited
 *      |                       ^   |  \                       |  |
 *      |                 unpause   pause  rm -f               |  | start / restart
 *      |                       |   v      \                   |  +----------> running
 *      |                       paused      v                  |
 *      +--------------------------------> removing <----------+  rm
 *                                           |
 *                                           v
 *                                         (gone)      dead: removal failed half-way
 *
 * Pure: no I/O. The transitions themselves are the engine's (engine.ts), under the container's
 * lock (lock.ts), so two processes never move one container at once.
 */
import { conflict, precondition, type HullError } from '../errors.js';
import type { ContainerStatus } from '../state/containers.js';

export type LifecycleOp = 'start' | 'restart' | 'stop' | 'kill' | 'remove' | 'forceRemove' | 'exec' | 'pause' | 'unpause' | 'attach' | 'wait';

/** What an operation does in a state: act, succeed without acting (docker's 304), or refuse. */
export type Admission = 'act' | 'noop';

interface Rule {
  act: ContainerStatus[];
  noop?: ContainerStatus[];
  /** The refusal for every other state (docker's words). */
  refuse(name: string, id: string, status: ContainerStatus): HullError;
}

const notRunning = (_n: string, id: string) => conflict(`Container ${id} is not running`);
const beingRemoved = (id: string) => conflict(`removal of container ${id} is already in progress`);

const RULES: Record<LifecycleOp, Rule> = {
  start: {
    act: ['created', 'exited'],
    noop: ['running'],
    refuse: (_n, id, s) =>
      s === 'paused' ? conflict(`cannot start a paused container, try unpause instead`)
        : s === 'removing' ? conflict(`container ${id} is marked for removal and cannot be started`)
          : precondition(`cannot start a dead container ${id}`),
  },
  restart: {
    act: ['created', 'running', 'exited', 'paused'],
    refuse: (_n, id, s) => (s === 'removing' ? conflict(`container ${id} is marked for removal and cannot be restarted`) : precondition(`cannot restart a dead container ${id}`)),
  },
  stop: { act: ['running', 'paused'], noop: ['created', 'exited', 'dead'], refuse: (_n, id) => beingRemoved(id) },
  kill: { act: ['running', 'paused'], refuse: notRunning },
  remove: {
    act: ['created', 'exited', 'dead'],
    refuse: (_n, id, s) =>
      s === 'removing' ? beingRemoved(id)
        : conflict(`You cannot remove a ${s} container ${id}. Stop the container before attempting removal or force remove`),
  },
  forceRemove: { act: ['created', 'running', 'paused', 'exited', 'dead', 'removing'], refuse: (_n, id) => beingRemoved(id) },
  exec: {
    act: ['running'],
    refuse: (_n, id, s) => (s === 'paused' ? conflict(`Container ${id} is paused, unpause the container before exec`) : notRunning('', id)),
  },
  pause: { act: ['running'], refuse: (_n, id, s) => (s === 'paused' ? conflict(`Container ${id} is already paused`) : notRunning('', id)) },
  unpause: { act: ['paused'], refuse: (_n, id) => conflict(`Container ${id} is not paused`) },
  attach: { act: ['created', 'running', 'paused', 'exited'], refuse: (_n, id, s) => (s === 'removing' ? beingRemoved(id) : precondition(`cannot attach to a dead container ${id}`)) },
  wait: { act: ['created', 'running', 'paused', 'exited', 'dead', 'removing'], refuse: notRunning },
};

/** Whether `op` may act on a container in `status`; throws docker's refusal otherwise. */
export function admit(op: LifecycleOp, row: { id: string; name: string; status: ContainerStatus }): Admission {
  const r = RULES[op];
  if (r.act.includes(row.status)) return 'act';
  if (r.noop?.includes(row.status)) return 'noop';
  throw r.refuse(row.name, row.id, row.status);
}

/** The states in which a container has (or may have) a process of its current run. */
export function isLive(status: ContainerStatus): boolean {
  return status === 'running' || status === 'paused';
}
