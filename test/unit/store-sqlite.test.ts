import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.js';
import { storeContract } from '../contract/store.contract.js';

storeContract('sqlite (file, WAL)', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'previewd-store-')), 'previewd.db');
  return { store: new SqliteStore(file), openAnother: async () => new SqliteStore(file) };
});
