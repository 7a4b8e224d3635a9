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
];
