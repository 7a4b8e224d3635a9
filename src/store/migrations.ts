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
];
