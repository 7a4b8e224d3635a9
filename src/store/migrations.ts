/**
 * Versioned schema migrations. Append only: a released migration is never edited.
 * Each engine runs the statements of its own dialect.
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'sandboxes and events',
    sqlite: `
      CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        owner TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        doc TEXT NOT NULL
      );
      CREATE INDEX sandboxes_state ON sandboxes(state);
      CREATE INDEX sandboxes_owner ON sandboxes(owner);
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sandbox_id TEXT NOT NULL,
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        data TEXT NOT NULL
      );
      CREATE INDEX events_sandbox ON events(sandbox_id, id);
    `,
  },
  {
    version: 2,
    name: 'API keys, dashboard sessions, event owners',
    sqlite: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        role TEXT NOT NULL,
        owner TEXT,
        name TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT
      );
      CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
      CREATE INDEX sessions_key ON sessions(key_id);
      ALTER TABLE events ADD COLUMN owner TEXT;
      CREATE INDEX events_owner ON events(owner, id);
    `,
  },
  {
    version: 3,
    name: 'sandbox uids',
    sqlite: `
      CREATE TABLE sandbox_uids (
        uid INTEGER PRIMARY KEY,
        sandbox_id TEXT NOT NULL UNIQUE,
        allocated_at TEXT NOT NULL
      );
      CREATE TABLE uid_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        next_offset INTEGER NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'nodes, the node of each sandbox and event',
    sqlite: `
      ALTER TABLE sandboxes ADD COLUMN node TEXT NOT NULL DEFAULT 'local';
      UPDATE sandboxes SET doc = json_set(doc, '$.node', 'local') WHERE json_extract(doc, '$.node') IS NULL;
      CREATE INDEX sandboxes_node ON sandboxes(node, state);
      ALTER TABLE events ADD COLUMN node TEXT;
      CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL,
        api_url TEXT NOT NULL,
        edge_url TEXT NOT NULL,
        labels TEXT NOT NULL,
        capacity TEXT NOT NULL,
        usage TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        lease_until TEXT NOT NULL
      );
    `,
  },
  {
    version: 5,
    name: 'webhooks, their deliveries, the dispatcher cursor',
    sqlite: `
      CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        description TEXT,
        secret TEXT NOT NULL,
        after_event_id INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX webhooks_scope ON webhooks(scope, created_at);
      CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_id INTEGER,
        sandbox_id TEXT,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT,
        give_up_at TEXT NOT NULL,
        last_attempt_at TEXT,
        last_status_code INTEGER,
        last_error TEXT,
        last_duration_ms INTEGER,
        delivered_at TEXT,
        lease_holder TEXT,
        lease_until TEXT,
        UNIQUE (webhook_id, event_id)
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
      CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(webhook_id, sandbox_id, status, event_id);
      CREATE INDEX webhook_deliveries_list ON webhook_deliveries(webhook_id, id);
      CREATE TABLE webhook_cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_event_id INTEGER NOT NULL
      );
      -- Events written before webhooks existed have no hook to go to.
      INSERT INTO webhook_cursor (id, last_event_id) SELECT 1, coalesce(max(id), 0) FROM events;
    `,
  },
  {
    version: 6,
    name: 'snapshots',
    sqlite: `
      CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        owner TEXT,
        node TEXT NOT NULL,
        sandbox_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        doc TEXT NOT NULL
      );
      CREATE INDEX snapshots_owner ON snapshots(owner, id);
      CREATE INDEX snapshots_node ON snapshots(node);
    `,
  },
];
