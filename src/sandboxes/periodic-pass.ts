import type { Logger } from 'pino';

/**
 * A background pass that runs every interval (reconciler, idle reaper, expiry). Concurrent callers
 * of `runOnce` share the pass under way; `stop` waits for it.
 */
export abstract class PeriodicPass<T> {
  private timer?: NodeJS.Timeout;
  private running?: Promise<T>;

  constructor(
    private readonly what: string,
    private readonly intervalMs: () => number,
    private readonly passLog: Logger,
  ) {}

  protected abstract pass(): Promise<T>;

  start(): void {
    this.timer = setInterval(() => {
      void this.runOnce().catch((err) => this.passLog.warn({ err }, `${this.what} failed`));
    }, this.intervalMs());
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  runOnce(): Promise<T> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}
