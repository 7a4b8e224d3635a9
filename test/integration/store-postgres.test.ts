import { afterAll, beforeAll } from 'vitest';
import { PostgresStore } from '../../src/store/postgres.js';
import { storeContract } from '../contract/store.contract.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';

let server: PostgresServer;
let n = 0;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

// Every case gets a fresh database of one private server.
storeContract('postgres (15, private server)', async () => {
  const url = await server.createDatabase(`contract_${++n}`);
  return new PostgresStore({ url });
});
