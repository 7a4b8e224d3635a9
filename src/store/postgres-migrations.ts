/**
 * The PostgreSQL schema, versioned. Append only: a released migration is never edited. They run
 * at `migrate()` in one transaction under an advisory lock, so nodes starting at once apply each
 * migration exactly once.
 *
 * Ids are `COLLATE "C"` so ordering and cursors compare bytes (as SQLite does), whatever the
 * database's locale. Times are `timestamptz` (read back as ISO strings); documents are JSONB.
 */
export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

export const pgMigrations: PgMigration[] = [
  {
    version: 1,
    name: 'sandboxes, events, API keys, sessions, sandbox uids',
    sql: `
      CREATE TABLE sandboxes (
        id text COLLATE "C" PRIMARY KEY,
        state text NOT NULL,
        owner text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        doc jsonb NOT NULL
      );
      CREATE INDEX sandboxes_state ON sandboxes (state);
      CREATE INDEX sandboxes_owner ON sandboxes (owner);
      CREATE INDEX sandboxes_labels ON sandboxes USING gin ((doc -> 'labels') jsonb_path_ops);

      -- Event ids come from this one row, updated inside the writing transaction: appends are
      -- serialised until commit, so ids become visible in order (a sequence would not).
      CREATE TABLE event_counter (
        id int PRIMARY KEY CHECK (id = 1),
        last bigint NOT NULL
      );
      INSERT INTO event_counter (id, last) VALUES (1, 0);
      CREATE TABLE events (
        id bigint PRIMARY KEY,
        sandbox_id text COLLATE "C" NOT NULL,
        owner text,
        type text NOT NULL,
        at timestamptz NOT NULL,
        data jsonb NOT NULL
      );
      CREATE INDEX events_sandbox ON events (sandbox_id, id);
      CREATE INDEX events_owner ON events (owner, id);

      CREATE TABLE api_keys (
        id text COLLATE "C" PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        role text NOT NULL,
        owner text,
        name text,
        created_at timestamptz NOT NULL,
        revoked_at timestamptz
      );
      CREATE TABLE sessions (
        hash text PRIMARY KEY,
        key_id text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX sessions_key ON sessions (key_id);
      CREATE INDEX sessions_expires ON sessions (expires_at);

      CREATE TABLE sandbox_uids (
        uid integer PRIMARY KEY,
        sandbox_id text NOT NULL UNIQUE,
        allocated_at timestamptz NOT NULL
      );
      -- Locked FOR UPDATE by every allocation: two nodes allocating at once take turns.
      CREATE TABLE uid_cursor (
        id int PRIMARY KEY CHECK (id = 1),
        next_offset integer NOT NULL
      );
      INSERT INTO uid_cursor (id, next_offset) VALUES (1, 0);
    `,
  },
  {
    version: 2,
    name: 'nodes, the node of each sandbox and event',
    sql: `
      ALTER TABLE sandboxes ADD COLUMN node text COLLATE "C" NOT NULL DEFAULT 'local';
      UPDATE sandboxes SET doc = jsonb_set(doc, '{node}', '"local"') WHERE NOT doc ? 'node';
      CREATE INDEX sandboxes_node ON sandboxes (node, state);
      ALTER TABLE events ADD COLUMN node text;
      CREATE TABLE nodes (
        id text COLLATE "C" PRIMARY KEY,
        epoch bigint NOT NULL,
        api_url text NOT NULL,
        edge_url text NOT NULL,
        labels jsonb NOT NULL,
        capacity jsonb NOT NULL,
        usage jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('up', 'down')),
        started_at timestamptz NOT NULL,
        heartbeat_at timestamptz NOT NULL,
        lease_until timestamptz NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'webhooks, their deliveries, the dispatcher cursor',
    sql: `
      CREATE TABLE webhooks (
        id text COLLATE "C" PRIMARY KEY,
        scope text NOT NULL,
        url text NOT NULL,
        events jsonb NOT NULL,
        description text,
        secret text NOT NULL,
        after_event_id bigint NOT NULL,
        created_at timestamptz NOT NULL
      );
      CREATE INDEX webhooks_scope ON webhooks (scope, created_at);
      CREATE TABLE webhook_deliveries (
        id text COLLATE "C" PRIMARY KEY,
        webhook_id text COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_id bigint,
        sandbox_id text COLLATE "C",
        type text NOT NULL,
        payload text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        next_attempt_at timestamptz,
        give_up_at timestamptz NOT NULL,
        last_attempt_at timestamptz,
        last_status_code integer,
        last_error text,
        last_duration_ms integer,
        delivered_at timestamptz,
        lease_holder text,
        lease_until timestamptz,
        UNIQUE (webhook_id, event_id)
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
      CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, sandbox_id, status, event_id);
      CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, id);
      -- Locked FOR UPDATE by every dispatcher step: nodes take turns, each event is turned once.
      CREATE TABLE webhook_cursor (
        id int PRIMARY KEY CHECK (id = 1),
        last_event_id bigint NOT NULL
      );
      -- Events written before webhooks existed have no hook to go to.
      INSERT INTO webhook_cursor (id, last_event_id) SELECT 1, last FROM event_counter WHERE id = 1;
    `,
  },
  {
    version: 4,
    name: 'snapshots',
    sql: `
      CREATE TABLE snapshots (
        id text COLLATE "C" PRIMARY KEY,
        owner text,
        node text NOT NULL,
        sandbox_id text COLLATE "C" NOT NULL,
        created_at timestamptz NOT NULL,
        doc jsonb NOT NULL
      );
      CREATE INDEX snapshots_owner ON snapshots (owner, id);
      CREATE INDEX snapshots_node ON snapshots (node);
    `,
  },
];
