import type { TestServer } from './server.js';
import { waitFor } from './server.js';

/** The `sandbox.state` events of a sandbox, oldest first, as { from, to, reason }. */
export async function stateEvents(
  server: TestServer,
  id: string,
): Promise<{ from: string; to: string; reason?: string }[]> {
  const events = await server.app.bus.history({ sandboxId: id });
  return events.filter((e) => e.type === 'sandbox.state').map((e) => e.data as never);
}

/** Waits for a `sandbox.state` event into `to` (with `reason`, when given). */
export async function waitStateEvent(
  server: TestServer,
  id: string,
  to: string,
  reason?: string,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    async () =>
      (await stateEvents(server, id)).some(
        (e) => e.to === to && (reason === undefined || e.reason === reason),
      )
        ? true
        : undefined,
    timeoutMs,
    `sandbox ${id} → ${to}${reason ? ` (${reason})` : ''}`,
  );
}

export async function stateOf(server: TestServer, id: string): Promise<string> {
  return (await server.call('GET', `/v1/sandboxes/${id}`)).body.state;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
