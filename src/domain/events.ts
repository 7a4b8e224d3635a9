import type { SandboxState } from './state-machine.js';

/**
 * The event table: every event previewd publishes, with its payload. Docs and SDKs read this.
 * Events are small; they name the sandbox and say what changed, not the whole object.
 */
export interface EventPayloads {
  'sandbox.created': { image: string };
  'sandbox.state': { from: SandboxState; to: SandboxState; error?: { code: string; message: string } };
  'sandbox.deleted': Record<string, never>;
  'sandbox.lost': { reason: string };
}

export type EventType = keyof EventPayloads;

export const eventTypes: readonly EventType[] = [
  'sandbox.created',
  'sandbox.state',
  'sandbox.deleted',
  'sandbox.lost',
];

export interface PreviewdEvent<T extends EventType = EventType> {
  /** Monotonic id, usable as an SSE id and for resume. */
  id: number;
  type: T;
  sandboxId: string;
  at: string;
  data: EventPayloads[T];
}

export type NewEvent<T extends EventType = EventType> = Omit<PreviewdEvent<T>, 'id' | 'at'>;
