import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../domain/clock.js';
import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';
import { WebhookDispatcher } from './dispatcher.js';
import { WebhookSender } from './sender.js';
import type { Resolve } from './target-policy.js';
import { WebhookService } from './webhook-service.js';

export interface WebhooksOptions {
  config: Config;
  store: Store;
  bus: Pick<EventBus, 'subscribe'>;
  node: string;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  resolve?: Resolve;
}

/** The webhooks of one node: the API's service, the dispatcher (events → deliveries) and the sender. */
export class Webhooks {
  readonly service: WebhookService;
  readonly dispatcher: WebhookDispatcher;
  readonly sender: WebhookSender;
  private readonly enabled: boolean;

  constructor(opts: WebhooksOptions) {
    const c = opts.config.webhooks;
    const clock = opts.clock ?? systemClock;
    this.enabled = c.enabled;
    this.sender = new WebhookSender({
      store: opts.store,
      clock,
      node: opts.node,
      timeoutMs: c.timeoutSec * 1000,
      allowPrivateTargets: c.allowPrivateTargets,
      retry: { baseMs: c.retryBaseMs, maxMs: c.retryMaxMs },
      pollMs: c.pollMs,
      concurrency: c.concurrency,
      log: opts.log,
      random: opts.random,
      resolve: opts.resolve,
    });
    this.dispatcher = new WebhookDispatcher({
      store: opts.store,
      bus: opts.bus,
      clock,
      retryWindowMs: c.retryWindowSec * 1000,
      pollMs: Math.max(c.pollMs, 1_000),
      onDeliveries: () => this.sender.kick(),
      log: opts.log,
    });
    this.service = new WebhookService({
      store: opts.store,
      config: c,
      clock,
      onDelivery: () => this.sender.kick(),
      resolve: opts.resolve,
    });
  }

  start(): void {
    if (!this.enabled) return;
    this.dispatcher.start();
    this.sender.start();
  }

  async stop(): Promise<void> {
    await this.dispatcher.stop();
    await this.sender.stop();
  }
}
