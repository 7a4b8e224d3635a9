import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../domain/clock.js';
import type { ClaimedDelivery } from '../domain/webhook.js';
import type { Store } from '../store/store.js';
import { nextAttemptAt, type RetryPolicy } from './backoff.js';
import type { Resolve } from './target-policy.js';
import { type SendResult, sendDelivery } from './webhook-http.js';

export interface SenderOptions {
  store: Store;
  clock: Clock;
  /** This node's id (part of the lease holder, for the log). */
  node: string;
  timeoutMs: number;
  allowPrivateTargets: boolean;
  retry: RetryPolicy;
  pollMs: number;
  concurrency: number;
  log: Logger;
  random?: () => number;
  resolve?: Resolve;
}

/** Extra time a lease runs past the attempt's timeout (the outcome's write, a slow store). */
const LEASE_MARGIN_MS = 5_000;

/**
 * Sends due deliveries. Each attempt is claimed from the store under a lease first, so in a
 * cluster exactly one node sends it, and a node killed mid-attempt leaves it to whoever claims it
 * after the lease ends. The outcome is written only by the lease's holder: delivered (2xx), or
 * retried with exponential backoff and jitter until the delivery's give-up time, then failed.
 */
export class WebhookSender {
  private readonly holder: string;
  private readonly leaseMs: number;
  private timer: NodeJS.Timeout | undefined;
  private claiming: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly opts: SenderOptions) {
    this.holder = `${opts.node}/${randomBytes(6).toString('hex')}`;
    this.leaseMs = opts.timeoutMs + LEASE_MARGIN_MS;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Stops claiming; waits for the attempts in flight to record their outcome. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.claiming;
    await Promise.all([...this.inFlight]);
  }

  /** Looks for due deliveries now. */
  kick(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = this.claimAndSend()
      .then(() => undefined)
      .catch((err: unknown) => this.opts.log.warn({ err }, 'webhook claim failed; retried on the next tick'))
      .finally(() => {
        this.claiming = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * One pass: claims what is due (up to the free concurrency) and starts the attempts; resolves
   * once they are claimed, `settled()` once they are recorded. Returns how many were claimed.
   */
  async claimAndSend(): Promise<number> {
    const free = this.opts.concurrency - this.inFlight.size;
    if (free <= 0) return 0;
    const claimed = await this.opts.store.claimWebhookDeliveries({
      now: new Date(this.opts.clock.now()).toISOString(),
      leaseMs: this.leaseMs,
      limit: free,
      holder: this.holder,
    });
    for (const delivery of claimed) {
      const attempt = this.attempt(delivery).finally(() => {
        this.inFlight.delete(attempt);
        // The next delivery of its sandbox may be due now.
        this.kick();
      });
      this.inFlight.add(attempt);
    }
    return claimed.length;
  }

  /** Resolves when every attempt started so far has recorded its outcome. */
  async settled(): Promise<void> {
    await this.claiming;
    await Promise.all([...this.inFlight]);
  }

  private async attempt(d: ClaimedDelivery): Promise<void> {
    const sentAt = new Date(this.opts.clock.now());
    let result: SendResult;
    try {
      const signature = new Webhook(d.secret).sign(d.id, sentAt, d.payload);
      result = await sendDelivery({
        url: d.url,
        headers: {
          'webhook-id': d.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body: d.payload,
        timeoutMs: this.opts.timeoutMs,
        allowPrivate: this.opts.allowPrivateTargets,
        resolve: this.opts.resolve,
      });
    } catch (err) {
      result = { error: (err as Error).message, durationMs: 0 };
    }
    const nowMs = this.opts.clock.now();
    const ok = result.statusCode !== undefined && result.statusCode >= 200 && result.statusCode < 300;
    const next = ok
      ? undefined
      : nextAttemptAt(nowMs, d.attempts, Date.parse(d.giveUpAt), this.opts.retry, this.opts.random);
    const recorded = await this.opts.store
      .completeWebhookAttempt({
        id: d.id,
        leaseHolder: d.leaseHolder,
        now: new Date(nowMs).toISOString(),
        ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
        ...(result.error !== undefined ? { error: result.error } : {}),
        durationMs: result.durationMs,
        result: ok ? 'delivered' : next === undefined ? 'failed' : 'retry',
        ...(next !== undefined ? { nextAttemptAt: new Date(next).toISOString() } : {}),
      })
      .catch((err: unknown) => {
        this.opts.log.warn(
          { err, delivery: d.id },
          'webhook attempt outcome not recorded; retried after its lease',
        );
        return false;
      });
    if (!recorded)
      this.opts.log.debug({ delivery: d.id }, 'webhook lease lost before the outcome was recorded');
  }
}
