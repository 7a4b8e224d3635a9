import type { ApiKeyRecord, SessionRecord } from '../domain/credentials.js';
import type { NewEvent, PreviewdEvent } from '../domain/events.js';
import type { Fence, NodeRecord } from '../domain/node.js';
import type { SandboxPatch, SandboxRecord } from '../domain/sandbox.js';
import type { SnapshotRecord } from '../domain/snapshot-schemas.js';
import type { SandboxState } from '../domain/state-machine.js';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  NewDelivery,
  WebhookDelivery,
  WebhookRecord,
} from '../domain/webhook.js';

export interface SandboxFilter {
  state?: SandboxState;
  states?: readonly SandboxState[];
  /** Only this owner's sandboxes (a tenant's view). */
  owner?: string;
  /** All must match. */
  labels?: Record<string, string>;
  /** Only this node's rows (rows written without a node are `local`). */
  node?: string;
  /** Include rows in state `deleted` (the reconciler needs them). */
  includeDeleted?: boolean;
  limit?: number;
  /** Return ids strictly older than this one (newest first). */
  cursor?: string;
}

export interface SnapshotFilter {
  /** Only this owner's snapshots (a tenant's view). */
  owner?: string;
  /** Only snapshots whose layers are on this node. */
  node?: string;
  sandboxId?: string;
  limit?: number;
  /** Return ids strictly older than this one (newest first). */
  cursor?: string;
}

export interface EventFilter {
  afterId?: number;
  sandboxId?: string;
  /** Only events of this owner's sandboxes. */
  owner?: string;
  limit?: number;
}

export interface WriteOptions {
  /**
   * Written in the same transaction as the change (the outbox); its owner is the row's owner, its
   * node the row's node (for a purge: the row as it was). Not written when the change is not made.
   */
  event?: NewEvent;
  /**
   * Refuse the write (throw PreviewdError 'node_fenced') unless node `fence.node` exists, is 'up'
   * and has epoch `fence.epoch`. Checked inside the same transaction.
   */
  fence?: Fence;
}

/** What a node reports when it takes (or takes again) its lease. */
export interface AcquireNodeInput {
  id: string;
  apiUrl: string;
  edgeUrl: string;
  labels: Record<string, string>;
  capacity: NodeRecord['capacity'];
  usage: NodeRecord['usage'];
  /** The lease runs this long from `now` (1 ms .. 1 day). */
  leaseMs: number;
  /** ISO time of the caller's clock. */
  now: string;
}

export interface RenewNodeInput {
  usage: NodeRecord['usage'];
  leaseMs: number;
  now: string;
  labels?: Record<string, string>;
}

/**
 * Persistence for the control plane. One interface, several engines (SQLite now, PostgreSQL
 * later); one contract suite (test/contract/store.contract.ts) runs against each.
 *
 * Event ids (the rule every engine keeps): ids increase, and an event becomes visible only after
 * every event with a lower id is visible (or was rolled back). A reader that polls
 * `listEvents({ afterId })` with the last id it saw must never skip an event that commits later
 * with a lower id. A plain sequence does not give this (sequence values are taken at insert and
 * transactions commit in any order). SQLite has one writer at a time, so a write transaction
 * takes the next id and commits before the next writer takes one. PostgreSQL takes the id from a
 * counter row locked (`UPDATE … RETURNING`) inside the writing transaction, so transactions that
 * write events commit in id order; a rolled-back one leaves its id unused (a gap that no later
 * commit fills, which is harmless).
 *
 * Fencing: a write carrying a `Fence` checks the node row inside its own transaction, so a node
 * fenced off (`fenceNode`, which bumps the epoch) between its check and its commit is still
 * refused; in PostgreSQL the node row is read `FOR SHARE` so `fenceNode` waits for the write.
 */
export interface Store {
  readonly engine: string;
  migrate(): Promise<void>;
  ping(): Promise<void>;
  /** A record without `node` is stored as `local`. */
  insertSandbox(record: SandboxRecord, opts?: WriteOptions): Promise<void>;
  getSandbox(id: string, opts?: { includeDeleted?: boolean }): Promise<SandboxRecord | undefined>;
  listSandboxes(filter?: SandboxFilter): Promise<SandboxRecord[]>;
  /**
   * Applies `patch` and returns the new record. With `expectState`, only when the row is in one
   * of those states (compare-and-set); otherwise returns undefined and changes nothing (no event
   * written either). Undefined too when the row does not exist.
   */
  updateSandbox(
    id: string,
    patch: SandboxPatch,
    expectState?: readonly SandboxState[],
    opts?: WriteOptions,
  ): Promise<SandboxRecord | undefined>;
  /** Removes the row for good (after deletion has been published), and frees its uid. */
  purgeSandbox(id: string, opts?: WriteOptions): Promise<void>;
  /**
   * Hands `sandboxId` a uid of `[start, start + size)` no other sandbox holds, round-robin from
   * where the last allocation stopped (a freed uid comes back only after the rest of the range);
   * the same uid again when the sandbox already holds one. Throws `uid_range_exhausted` when every
   * uid of the range is held.
   */
  allocateUid(sandboxId: string, range: { start: number; size: number }): Promise<number>;
  /** Frees the sandbox's uid (its container and files are gone). */
  releaseUid(sandboxId: string): Promise<void>;
  /**
   * Stores the event with the owner of its sandbox (read from the sandbox row) and the node that
   * wrote it: `fence.node` when fenced, else the sandbox row's node, else none.
   */
  appendEvent(event: NewEvent, opts?: { fence?: Fence }): Promise<PreviewdEvent>;
  /** Ascending by id, at most `limit` (default 1000). */
  listEvents(opts: EventFilter): Promise<PreviewdEvent[]>;
  /** The highest event id visible now (0 when there is none): where a new reader starts. */
  lastEventId(): Promise<number>;
  /**
   * Registers node `input.id` or takes it again (upsert): epoch = previous + 1 (1 for a new node),
   * status `up`, startedAt = heartbeatAt = now, leaseUntil = now + leaseMs.
   */
  acquireNode(input: AcquireNodeInput): Promise<NodeRecord>;
  /**
   * Heartbeat: usage (and labels when given), heartbeatAt = now, leaseUntil = now + leaseMs.
   * Undefined, and nothing written, when the epoch is stale, the node is `down` or unknown.
   */
  renewNode(fence: Fence, input: RenewNodeInput): Promise<NodeRecord | undefined>;
  getNode(id: string): Promise<NodeRecord | undefined>;
  /** Ordered by id. */
  listNodes(): Promise<NodeRecord[]>;
  /**
   * Compare-and-set: marks node `id` down and bumps its epoch only if its epoch is still `epoch`
   * and leaseUntil < now (and it is up: a node already down is not fenced again). True for
   * exactly one caller; the winner then owns the clean-up of that node's sandboxes.
   */
  fenceNode(id: string, epoch: number, now: string): Promise<boolean>;
  setNodeLabels(id: string, labels: Record<string, string>): Promise<void>;
  insertApiKey(record: ApiKeyRecord): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked and removes its dashboard sessions, in one transaction. */
  revokeApiKey(id: string, at: string): Promise<ApiKeyRecord | undefined>;
  insertSession(record: SessionRecord): Promise<void>;
  getSession(hash: string): Promise<SessionRecord | undefined>;
  deleteSession(hash: string): Promise<void>;
  /** Removes sessions that ended before `now`; returns how many. */
  deleteExpiredSessions(now: string): Promise<number>;
  // Webhooks (docs/webhooks.md): hooks, their delivery rows, the dispatcher's cursor, leases.
  /**
   * Inserts the hook unless its scope already holds `maxPerScope` hooks (then throws
   * `webhook_limit_reached`), in one transaction; `afterEventId` is set to the store's head.
   */
  insertWebhook(record: Omit<WebhookRecord, 'afterEventId'>, maxPerScope: number): Promise<WebhookRecord>;
  getWebhook(id: string): Promise<WebhookRecord | undefined>;
  /** Oldest first; only this scope's hooks. */
  listWebhooks(scope: string): Promise<WebhookRecord[]>;
  /** Removes the hook and its deliveries; false when there was none. */
  deleteWebhook(id: string): Promise<boolean>;
  /**
   * One dispatcher step, in one transaction: reads the events after the stored cursor (at most
   * `limit`), writes one pending delivery for each hook an event matches (`newId` names it; a
   * hook never gets one event twice), moves the cursor past them. Returns how many events were
   * read and deliveries written. Concurrent callers (nodes) take turns, so each row is written once.
   */
  dispatchWebhookEvents(input: {
    limit: number;
    now: string;
    giveUpAt: string;
    newId: () => string;
  }): Promise<{ events: number; deliveries: number }>;
  /** The dispatcher's cursor: the last event id turned into deliveries (0 at first). */
  webhookCursor(): Promise<number>;
  insertWebhookDelivery(delivery: NewDelivery): Promise<WebhookDelivery>;
  getWebhookDelivery(webhookId: string, id: string): Promise<WebhookDelivery | undefined>;
  /** Newest first; `cursor`: ids strictly older than this one. */
  listWebhookDeliveries(
    webhookId: string,
    opts: { limit: number; cursor?: string; status?: WebhookDelivery['status'] },
  ): Promise<WebhookDelivery[]>;
  /**
   * Claims up to `limit` pending deliveries due at `now` whose lease (if any) ended, each the
   * oldest pending one of its hook and sandbox (so one sandbox's deliveries go one at a time, in
   * event order), under a lease until `now + leaseMs` held by `holder`; counts the attempt.
   * Concurrent claimers never get the same delivery while its lease runs.
   */
  claimWebhookDeliveries(input: {
    now: string;
    leaseMs: number;
    limit: number;
    holder: string;
  }): Promise<ClaimedDelivery[]>;
  /** Records an attempt's outcome and ends the lease; false (nothing written) unless `holder` still holds it. */
  completeWebhookAttempt(outcome: AttemptOutcome): Promise<boolean>;
  /** Makes a delivery pending again, due at `now`, given up at `giveUpAt`; undefined when there is none. */
  redeliverWebhookDelivery(
    webhookId: string,
    id: string,
    now: string,
    giveUpAt: string,
  ): Promise<WebhookDelivery | undefined>;
  // Snapshots (docs/snapshots.md): rows only; their layers are files on the node that holds them.
  /**
   * Inserts the snapshot unless its owner already holds `maxPerOwner` (then throws
   * `snapshot_quota_exceeded`), count and insert in one transaction. A snapshot without an owner
   * is not counted.
   */
  insertSnapshot(record: SnapshotRecord, maxPerOwner: number): Promise<void>;
  getSnapshot(id: string): Promise<SnapshotRecord | undefined>;
  /** Newest first. */
  listSnapshots(filter?: SnapshotFilter): Promise<SnapshotRecord[]>;
  /** Removes the row; false when there was none. */
  deleteSnapshot(id: string): Promise<boolean>;
  close(): Promise<void>;
}
