import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/schema.js';
import type { EventBus } from '../../events/bus.js';
import type { SandboxProvider } from '../../providers/provider.js';
import type { ProcessRegistry } from '../../sandboxes/processes.js';
import type { SandboxService } from '../../sandboxes/service.js';
import type { Store } from '../../store/store.js';

/** Where API and exec activity is recorded for the idle reaper (the edge's ActivityTracker). */
export interface ActivitySink {
  touch(sandboxId: string): void;
  socketOpened?(sandboxId: string): void;
  socketClosed?(sandboxId: string): void;
  /** Work under way until the returned function is called (the idle reaper leaves the sandbox alone). */
  hold?(sandboxId: string): () => void;
}

/** What the sandbox I/O routes (files, exec, processes, logs, events) need. */
export interface IoRouteDeps {
  config: Config;
  service: SandboxService;
  provider: SandboxProvider;
  store: Store;
  bus: EventBus;
  processes: ProcessRegistry;
  activity: ActivitySink;
}

/** Counts every request of the plugin as activity of the sandbox it names. */
export function recordActivity(app: FastifyInstance, activity: ActivitySink): void {
  app.addHook('preHandler', async (request) => {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string') activity.touch(id);
  });
}

/** Counts every request of the plugin as running work of its sandbox until its answer is done. */
export function holdWhileAnswering(app: FastifyInstance, activity: ActivitySink): void {
  if (!activity.hold) return;
  app.addHook('preHandler', async (request, reply) => {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    // A WebSocket holds its sandbox for as long as it is open (its route does that itself).
    if (typeof id !== 'string' || request.ws) return;
    const release = activity.hold!(id);
    reply.raw.once('close', release);
    reply.raw.once('finish', release);
  });
}
