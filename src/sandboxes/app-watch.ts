import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { AppStatus, SandboxProvider } from '../providers/provider.js';
import { tailLines } from './crash-watch.js';

/** Lines the supervisor itself prints; not the app's output. */
const SUPERVISOR_LINE = /^\[previewd\] /;

function crashSignature(status: AppStatus | undefined): string | undefined {
  if (!status || (status.state !== 'crashed' && status.state !== 'failed')) return undefined;
  return `${status.crashes}@${status.updatedAt}`;
}

/**
 * Publishes `app.crashed` when a supervised app exits while its container stays up (the supervisor
 * restarts it with backoff): polls the supervisor's status of each running sandbox (a host file
 * read for Docker). The payload is the same as for an exited container: exit code and the app's
 * last log lines (the supervisor's own lines left out).
 */
export class AppWatch {
  private readonly seen = new Map<string, string | undefined>();
  private timer?: NodeJS.Timeout;
  private polling = false;

  constructor(
    private readonly deps: { provider: SandboxProvider; bus: EventBus; log: Logger; intervalMs?: number },
  ) {}

  start(): void {
    if (!this.deps.provider.appStatus) return;
    this.timer = setInterval(() => void this.poll(), this.deps.intervalMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.seen.clear();
  }

  /** Starts watching; a crash the status file already holds (from before) is not reported again. */
  async watch(sandboxId: string): Promise<void> {
    if (this.seen.has(sandboxId) || !this.deps.provider.appStatus) return;
    this.seen.set(sandboxId, undefined);
    const status = await this.deps.provider.appStatus(sandboxId).catch(() => undefined);
    if (this.seen.has(sandboxId) && this.seen.get(sandboxId) === undefined)
      this.seen.set(sandboxId, crashSignature(status));
  }

  unwatch(sandboxId: string): void {
    this.seen.delete(sandboxId);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const [sandboxId, last] of this.seen) {
        const status = await this.deps.provider.appStatus?.(sandboxId).catch(() => undefined);
        const signature = crashSignature(status);
        if (!status || !signature || signature === last || !this.seen.has(sandboxId)) continue;
        this.seen.set(sandboxId, signature);
        await this.report(sandboxId, status).catch((err) =>
          this.deps.log.warn({ err, sandboxId }, 'app crash report failed'),
        );
      }
    } finally {
      this.polling = false;
    }
  }

  private async report(sandboxId: string, status: AppStatus): Promise<void> {
    const lines = await tailLines(this.deps.provider, sandboxId, 60).catch(() => []);
    const lastLines = lines.filter((l) => !SUPERVISOR_LINE.test(l)).slice(-20);
    this.deps.log.info({ sandboxId, exitCode: status.exitCode, state: status.state }, 'app crashed');
    await this.deps.bus.publish({
      type: 'app.crashed',
      sandboxId,
      data: { exitCode: status.exitCode ?? -1, oomKilled: false, lastLines },
    });
  }
}
