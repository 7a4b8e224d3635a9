import type { Logger } from 'pino';
import type { SandboxState } from '../domain/state-machine.js';
import type { Store } from '../store/store.js';

const LIVE_STATES: readonly SandboxState[] = [
  'creating',
  'starting',
  'running',
  'paused',
  'stopping',
  'stopped',
  'error',
];

/**
 * Preview traffic as activity for the idle reaper. Requests only mark the sandbox in memory; a
 * timer writes `lastActivityAt` once per sandbox per interval. Sandboxes with an open WebSocket
 * count as active at every flush.
 */
export class ActivityTracker {
  private readonly touched = new Set<string>();
  private readonly sockets = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  touch(sandboxId: string): void {
    this.touched.add(sandboxId);
  }

  socketOpened(sandboxId: string): void {
    this.sockets.set(sandboxId, (this.sockets.get(sandboxId) ?? 0) + 1);
    this.touched.add(sandboxId);
  }

  socketClosed(sandboxId: string): void {
    const n = (this.sockets.get(sandboxId) ?? 1) - 1;
    if (n <= 0) this.sockets.delete(sandboxId);
    else this.sockets.set(sandboxId, n);
    this.touched.add(sandboxId);
  }

  openSockets(sandboxId: string): number {
    return this.sockets.get(sandboxId) ?? 0;
  }

  /** Writes the pending activity: one update per sandbox. */
  async flush(): Promise<void> {
    const ids = new Set([...this.touched, ...this.sockets.keys()]);
    this.touched.clear();
    if (ids.size === 0) return;
    const at = new Date().toISOString();
    for (const id of ids) {
      try {
        await this.store.updateSandbox(id, { lastActivityAt: at }, LIVE_STATES);
      } catch (err) {
        this.log.warn({ err, sandboxId: id }, 'could not record preview activity');
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
