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
  /** Work under way through the API (an exec whose answer is still being sent). */
  private readonly inflight = new Map<string, number>();
  /** Last activity seen in memory (ms), ahead of the batched store writes. */
  private readonly seen = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  /** Whether open WebSockets count as activity (lifecycle.websocketsKeepAwake). */
  socketsKeepAwake = true;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  /** When the sandbox was last active in this process (ms since the epoch), if at all. */
  lastSeen(sandboxId: string): number | undefined {
    return this.seen.get(sandboxId);
  }

  /** Open WebSockets (when they count) or work in flight: the sandbox is in use right now. */
  busy(sandboxId: string): boolean {
    return (
      (this.socketsKeepAwake && this.openSockets(sandboxId) > 0) || (this.inflight.get(sandboxId) ?? 0) > 0
    );
  }

  /** Marks work under way until the returned function is called (once). */
  hold(sandboxId: string): () => void {
    this.inflight.set(sandboxId, (this.inflight.get(sandboxId) ?? 0) + 1);
    this.touch(sandboxId);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.inflight.get(sandboxId) ?? 1) - 1;
      if (n <= 0) this.inflight.delete(sandboxId);
      else this.inflight.set(sandboxId, n);
      this.touch(sandboxId);
    };
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  touch(sandboxId: string): void {
    this.touched.add(sandboxId);
    this.seen.set(sandboxId, Date.now());
  }

  socketOpened(sandboxId: string): void {
    this.sockets.set(sandboxId, (this.sockets.get(sandboxId) ?? 0) + 1);
    this.touch(sandboxId);
  }

  socketClosed(sandboxId: string): void {
    const n = (this.sockets.get(sandboxId) ?? 1) - 1;
    if (n <= 0) this.sockets.delete(sandboxId);
    else this.sockets.set(sandboxId, n);
    this.touch(sandboxId);
  }

  openSockets(sandboxId: string): number {
    return this.sockets.get(sandboxId) ?? 0;
  }

  /** Writes the pending activity: one update per sandbox. */
  async flush(): Promise<void> {
    const ids = new Set([
      ...this.touched,
      ...(this.socketsKeepAwake ? this.sockets.keys() : []),
      ...this.inflight.keys(),
    ]);
    this.touched.clear();
    if (ids.size === 0) return;
    const now = Date.now();
    for (const id of ids) this.seen.set(id, now);
    // Forget what nothing refers to any more (deleted sandboxes).
    if (this.seen.size > 10_000) {
      for (const [id, t] of this.seen) if (now - t > 86_400_000) this.seen.delete(id);
    }
    const at = new Date(now).toISOString();
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
