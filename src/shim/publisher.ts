/**
 * Events to containerd, in order: every event goes through one queue and is forwarded over
 * ttrpc (containerd.services.events.ttrpc.v1.Events/Forward on TTRPC_ADDRESS) only after the
 * one before it was accepted, so containerd sees /tasks/create before /tasks/start before
 * /tasks/exit before /tasks/delete, as runtime/v2/README.md requires. A failed forward is
 * retried (reconnecting) up to 5 times, one second more apart each time, like containerd's own
 * shim publisher; then the event is dropped and logged.
 */
import { any, encode, timestamp } from './protos.js';
import { TtrpcClient } from './ttrpc-client.js';

export const TOPIC = {
  CREATE: '/tasks/create',
  START: '/tasks/start',
  EXIT: '/tasks/exit',
  DELETE: '/tasks/delete',
  OOM: '/tasks/oom',
  EXEC_ADDED: '/tasks/exec-added',
  EXEC_STARTED: '/tasks/exec-started',
} as const;

/** The event message of each topic (package containerd.events). */
const MESSAGE: Record<string, string> = {
  [TOPIC.CREATE]: 'containerd.events.TaskCreate',
  [TOPIC.START]: 'containerd.events.TaskStart',
  [TOPIC.EXIT]: 'containerd.events.TaskExit',
  [TOPIC.DELETE]: 'containerd.events.TaskDelete',
  [TOPIC.OOM]: 'containerd.events.TaskOOM',
  [TOPIC.EXEC_ADDED]: 'containerd.events.TaskExecAdded',
  [TOPIC.EXEC_STARTED]: 'containerd.events.TaskExecStarted',
};

/** Pure: the ForwardRequest payload of one event. */
export function encodeForward(namespace: string, topic: string, event: Record<string, unknown>, at = new Date()): Buffer {
  const name = MESSAGE[topic];
  if (!name) throw new Error(`no event message for topic ${topic}`);
  return encode('containerd.services.events.ttrpc.v1.ForwardRequest', {
    envelope: { timestamp: timestamp(at), namespace, topic, event: any(name, event) },
  });
}

export class Publisher {
  private chain: Promise<void> = Promise.resolve();
  private client: TtrpcClient | undefined;

  constructor(private readonly address: string, private readonly namespace: string, private readonly log: (m: string) => void, private readonly retryMs = 1000) {}

  /** Queues an event; the promise settles when it was forwarded (or given up on). */
  publish(topic: string, event: Record<string, unknown>): Promise<void> {
    const payload = encodeForward(this.namespace, topic, event);
    this.chain = this.chain.then(() => this.forward(topic, payload));
    return this.chain;
  }

  /** Resolves when every queued event has been handled. */
  drain(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async forward(topic: string, payload: Buffer): Promise<void> {
    if (!this.address) return;
    for (let attempt = 0; attempt <= 5; attempt++) {
      try {
        if (!this.client || this.client.closed) this.client = await TtrpcClient.connect(this.address);
        await this.client.call('containerd.services.events.ttrpc.v1.Events', 'Forward', payload, { namespace: this.namespace, timeoutMs: 5000 });
        return;
      } catch (e) {
        this.client?.close();
        this.client = undefined;
        if (attempt === 5) {
          this.log(`evicting ${topic} from the event queue after 6 attempts: ${(e as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, this.retryMs * (attempt + 1)));
      }
    }
  }
}
