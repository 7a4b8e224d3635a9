import type { SandboxState } from './state-machine.js';

/** Why previewd changed a sandbox's state on its own (see `sandbox.state`). */
export type StateChangeReason = 'idle' | 'capacity' | 'expired' | 'engine';

/**
 * The event table: every event previewd publishes, with its payload. Docs and SDKs read this.
 * Events are small; they name the sandbox and say what changed, not the whole object.
 */
export interface EventPayloads {
  'sandbox.created': { image: string };
  /**
   * reason: why previewd moved it on its own — `idle` (idle reaper: pause or stop), `capacity`
   * (admission made room for another sandbox), `expired` (ttl), `engine` (reconciler); absent for
   * API calls.
   */
  'sandbox.state': {
    from: SandboxState;
    to: SandboxState;
    error?: { code: string; message: string };
    reason?: StateChangeReason;
  };
  /** The sandbox reached its expiresAt (ttl) and is deleted; `sandbox.deleted` follows. */
  'sandbox.expired': { expiresAt: string };
  'sandbox.deleted': Record<string, never>;
  'sandbox.lost': { reason: string };
  /**
   * A TCP port started listening inside the sandbox. declared: one of the sandbox's ports;
   * loopback: it listens on 127.0.0.1/::1 only, so previews cannot reach it.
   */
  'port.open': { port: number; declared: boolean; loopback: boolean };
  'port.closed': { port: number; declared: boolean };
  /** A background process (POST …/processes) ended. */
  'process.exit': { pid: number; exitCode: number; lastLines: string[] };
  /** The app (the sandbox's main process) exited while the sandbox was meant to run. */
  'app.crashed': { exitCode: number; oomKilled: boolean; lastLines: string[] };
  /** Files changed in the workspace (debounced; paths are workspace-relative, capped). */
  'files.changed': { paths: string[]; truncated: boolean };
  'sandbox.ports': { ports: number[] };
  'sandbox.preview_tokens_revoked': { validAfter: string };
  /**
   * The egress proxy refused a connection: host is the name the sandbox asked for (TLS SNI, HTTP
   * Host) when it sent one; rule why (`deny`, `not_listed`, `deny:<entry>`, `private_address`,
   * `no_name`, `resolve_failed`); suppressed: refusals not reported since the last event (at most
   * 30 events a minute per sandbox).
   */
  'egress.denied': { host?: string; port: number; rule: string; suppressed?: number };
}

export type EventType = keyof EventPayloads;

export const eventTypes: readonly EventType[] = [
  'sandbox.created',
  'sandbox.state',
  'sandbox.deleted',
  'sandbox.expired',
  'sandbox.lost',
  'port.open',
  'port.closed',
  'process.exit',
  'app.crashed',
  'files.changed',
  'sandbox.ports',
  'sandbox.preview_tokens_revoked',
  'egress.denied',
];

export interface PreviewdEvent<T extends EventType = EventType> {
  /** Monotonic id, usable as an SSE id and for resume. */
  id: number;
  type: T;
  sandboxId: string;
  /** The owner of the sandbox, when it has one (tenants see only their own). */
  owner?: string;
  /** The node that wrote it (cluster); absent for events written before nodes existed. */
  node?: string;
  at: string;
  data: EventPayloads[T];
}

export type NewEvent<T extends EventType = EventType> = Omit<
  PreviewdEvent<T>,
  'id' | 'at' | 'owner' | 'node'
>;
