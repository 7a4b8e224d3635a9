import type pg from 'pg';
import { PreviewdError } from '../domain/errors.js';
import type { EventType, NewEvent, PreviewdEvent } from '../domain/events.js';
import { nowIso, type SandboxPatch } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';

/**
 * The PostgreSQL engine's writing statements: the outbox row (events, ids from the counter row)
 * and the compare-and-set update of a sandbox document.
 */

export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/** `\u0000` in JSON text that is an escape (not an escaped backslash followed by `u0000`). */
const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/;

/**
 * JSON text for a JSONB column. JSONB cannot hold U+0000 in a string: such a value is a stable
 * invalid_request here rather than a database error.
 */
export function jsonText(value: unknown): string {
  const text = JSON.stringify(value);
  if (NUL_ESCAPE.test(text)) {
    throw new PreviewdError('invalid_request', 'text with a NUL character (U+0000) cannot be stored');
  }
  return text;
}

export interface EventRow {
  id: string;
  sandbox_id: string;
  owner: string | null;
  node: string | null;
  type: string;
  at: Date;
  data: unknown;
}

export const EVENT_COLUMNS = 'id, sandbox_id, owner, node, type, at, data';

export function toEvent(r: EventRow): PreviewdEvent {
  return {
    id: Number(r.id),
    type: r.type as EventType,
    sandboxId: r.sandbox_id,
    ...(r.owner !== null ? { owner: r.owner } : {}),
    ...(r.node !== null ? { node: r.node } : {}),
    at: r.at.toISOString(),
    data: r.data as PreviewdEvent['data'],
  };
}

/** `insertEvent`'s owner: read from the sandbox row (and its node, unless one is given). */
export const FROM_ROW = Symbol('from the sandbox row');

/**
 * The outbox row of a write, inside that write's transaction. The id comes from the counter row
 * (locked until this transaction commits, so ids become visible in order).
 */
export async function insertEvent(
  q: Queryable,
  event: NewEvent,
  owner: string | undefined | typeof FROM_ROW,
  node: string | undefined,
): Promise<PreviewdEvent> {
  const fromRow = owner === FROM_ROW;
  const { rows } = await q.query<EventRow>(
    `WITH n AS (UPDATE event_counter SET last = last + 1 WHERE id = 1 RETURNING last),
          s AS (SELECT owner, node FROM sandboxes WHERE id = $1)
     INSERT INTO events (id, sandbox_id, owner, node, type, at, data)
     SELECT n.last, $1,
       CASE WHEN $7::boolean THEN (SELECT owner FROM s) ELSE $2 END,
       coalesce($3, CASE WHEN $7::boolean THEN (SELECT node FROM s) END),
       $4, $5, $6::jsonb
     FROM n
     RETURNING ${EVENT_COLUMNS}`,
    [
      event.sandboxId,
      fromRow ? null : (owner ?? null),
      node ?? null,
      event.type,
      nowIso(),
      jsonText(event.data),
      fromRow,
    ],
  );
  return toEvent(rows[0]!);
}

/**
 * Compare-and-set update in one statement: the patch merged over the document (top level, as a
 * spread), the keys it sets to undefined removed, id/createdAt kept, updatedAt now, node kept
 * unless the patch names one.
 * $1 id, $2 patch (JSON), $3 keys to remove, $4 updatedAt, $5 expected states (or null),
 * $6 whether the patch names the owner.
 */
export const UPDATE_SANDBOX = `
  UPDATE sandboxes SET
    doc = ((doc || $2::jsonb) - $3::text[])
      || jsonb_build_object('id', doc -> 'id', 'createdAt', doc -> 'createdAt', 'updatedAt', $4::text,
           'node', coalesce($2::jsonb ->> 'node', node)),
    state = coalesce($2::jsonb ->> 'state', state),
    owner = CASE WHEN $6::boolean THEN $2::jsonb ->> 'owner' ELSE owner END,
    node = coalesce($2::jsonb ->> 'node', node),
    updated_at = $4::timestamptz
  WHERE id = $1 AND ($5::text[] IS NULL OR state = ANY($5::text[]))`;

export function updateParams(
  id: string,
  patch: SandboxPatch,
  expectState?: readonly SandboxState[],
): unknown[] {
  const {
    id: _id,
    createdAt: _created,
    updatedAt: _updated,
    ...rest
  } = patch as SandboxPatch & {
    id?: string;
    createdAt?: string;
  };
  const removed = Object.keys(rest).filter((k) => k !== 'node' && rest[k as keyof typeof rest] === undefined);
  return [id, jsonText(rest), removed, nowIso(), expectState ? [...expectState] : null, 'owner' in rest];
}
