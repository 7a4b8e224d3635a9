import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { OutputChunk, SandboxProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';

const RECENT_MS = 10_000;

/** The last `n` non-empty lines of the app's output. */
export async function tailLines(provider: SandboxProvider, sandboxId: string, n: number): Promise<string[]> {
  const stream = await provider.logs(sandboxId, { tail: n });
  let text = '';
  for await (const chunk of stream as AsyncIterable<OutputChunk>) text += chunk.data.toString('utf8');
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.length > 0)
    .slice(-n);
}

/**
 * Publishes `app.crashed` (exit code, OOM flag, last log lines) when a sandbox's main process exits
 * while the sandbox was meant to run, as the engine reports it (within milliseconds), then asks
 * for a reconcile so the state follows at once. Stops previewd made itself (the sandbox is
 * `stopping` or `deleted` by then) are not crashes.
 */
export class CrashWatch {
  private unwatch?: () => void;

  constructor(
    private readonly deps: {
      provider: SandboxProvider;
      store: Store;
      bus: EventBus;
      log: Logger;
      /** Called after a crash was published (the reconciler's runOnce). */
      onCrash?: (sandboxId: string) => void;
    },
  ) {}

  start(): void {
    this.unwatch = this.deps.provider.watchExits?.((exit) => {
      void this.handle(exit.sandboxId, exit.exitCode).catch((err) =>
        this.deps.log.warn({ err, sandboxId: exit.sandboxId }, 'crash handling failed'),
      );
    });
  }

  stop(): void {
    this.unwatch?.();
  }

  async handle(sandboxId: string, exitCode: number): Promise<void> {
    const { store, provider, bus } = this.deps;
    const record = await store.getSandbox(sandboxId);
    if (!record) return;
    const meantToRun = record.state === 'running' || record.state === 'paused';
    // The reconciler may have settled the exit first: it leaves app_exited on the record.
    const justSettled =
      record.state === 'stopped' &&
      record.error?.code === 'app_exited' &&
      record.stoppedAt !== undefined &&
      Date.now() - Date.parse(record.stoppedAt) < RECENT_MS;
    if (!meantToRun && !justSettled) return;
    const info = await provider.inspect(sandboxId);
    const lastLines = await tailLines(provider, sandboxId, 20).catch(() => []);
    await bus.publish({
      type: 'app.crashed',
      sandboxId,
      data: { exitCode: info.exitCode ?? exitCode, oomKilled: info.oomKilled ?? false, lastLines },
    });
    this.deps.onCrash?.(sandboxId);
  }
}
