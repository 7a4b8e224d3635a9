import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import { newDeliveryId } from './webhook-service.js';

const PAGE = 500;

export interface DispatcherOptions {
  store: Store;
  bus: Pick<EventBus, 'subscribe'>;
  clock: Clock;
  /** How long a new delivery is retried before it is marked failed. */
  retryWindowMs: number;
  /** Also look every this many ms (events another node wrote reach this bus too, this is a backstop). */
  pollMs: number;
  /** Deliveries were written: the sender looks at once. */
  onDeliveries?: () => void;
  log: Logger;
}

/**
 * Turns stored events into delivery rows. It follows the event feed from the store: each step
 * reads the events after the cursor kept in the store, writes the deliveries of every matching
 * hook and moves the cursor, in one transaction (store.dispatchWebhookEvents), so a restart
 * neither loses nor duplicates a row and nodes of a cluster take turns. The bus only says when
 * to look.
 */
export class WebhookDispatcher {
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(private readonly opts: DispatcherOptions) {}

  start(): void {
    this.stopped = false;
    this.unsubscribe = this.opts.bus.subscribe(() => this.kick());
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
    this.timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Asks for a step; steps run one at a time, and one asked for during a step follows it. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .then(() => undefined)
      .catch((err: unknown) =>
        this.opts.log.warn({ err }, 'webhook dispatch failed; retried on the next event or tick'),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Dispatches everything stored so far (tests call it directly). */
  async drain(): Promise<number> {
    let written = 0;
    for (;;) {
      const now = this.opts.clock.now();
      const step = await this.opts.store.dispatchWebhookEvents({
        limit: PAGE,
        now: new Date(now).toISOString(),
        giveUpAt: new Date(now + this.opts.retryWindowMs).toISOString(),
        newId: newDeliveryId,
      });
      written += step.deliveries;
      if (step.deliveries > 0) this.opts.onDeliveries?.();
      if (step.events < PAGE || this.stopped) return written;
    }
  }
}
