import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.js';
import { storeContract } from '../contract/store.contract.js';

storeContract(
  'sqlite (file, WAL)',
  async () => new SqliteStore(join(mkdtempSync(join(tmpdir(), 'previewd-store-')), 'previewd.db')),
);
