import { execFile } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** Debian's postgresql-15 (scripts/ensure-postgres.sh installs it). */
export const PG_BIN = process.env.PREVIEWD_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresOptions {
  /** Addresses the server listens on (default 127.0.0.1); the first one is in `url`. */
  listen?: string[];
  /** The database `url` names (default `previewd`). */
  database?: string;
  /** More databases to create at start (see `urlFor`). */
  databases?: string[];
}

export interface PostgresServer {
  /** postgres://postgres@<first listen address>:<port>/<database> */
  url: string;
  host: string;
  port: number;
  /** The server's folder (data, socket, log), removed at stop. */
  dir: string;
  /** The URL of another database of this server, optionally through another listen address. */
  urlFor(database: string, host?: string): string;
  /** Creates a database (a fresh, empty one) and returns its URL. */
  createDatabase(database: string): Promise<string>;
  /** Stops the server at once and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

const DB_NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the `postgres` user when we are root (it refuses to run as root). */
async function asPostgres(bin: string, args: string[]): Promise<void> {
  const file = join(PG_BIN, bin);
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', file, ...args]);
  else await run(file, args);
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A cluster made once by initdb and never started, shared by every test process: a new server
 * copies it (about 0.1 s) instead of running initdb (about 0.8 s, several seconds on a loaded
 * machine). Made under a temporary name and renamed into place, so a reader never sees half of it.
 */
async function templateCluster(): Promise<string> {
  const template = join(tmpdir(), `previewd-pg-template-v2-${PG_BIN.replace(/[^A-Za-z0-9]+/g, '_')}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const scratch = mkdtempSync(join(tmpdir(), 'previewd-pg-initdb-'));
  try {
    if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', scratch]);
    const data = join(scratch, 'data');
    await asPostgres('initdb', [
      '-D',
      data,
      '-A',
      'trust',
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
      // 1 MiB WAL segments (not 16): less to copy for each server.
      '--wal-segsize=1',
    ]);
    try {
      renameSync(data, template);
    } catch (err) {
      // Another process put its template there first: use that one.
      if (!existsSync(join(template, 'PG_VERSION'))) throw err;
    }
    return template;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * A private, real PostgreSQL 15: its own cluster in a fresh folder, on a free port, the socket in
 * that folder, trust authentication (loopback, and the subnets of the listen addresses). Made for
 * tests: fsync is off. About a second to start on this machine.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const listen = opts.listen ?? ['127.0.0.1'];
  const database = opts.database ?? 'previewd';
  for (const db of [database, ...(opts.databases ?? [])]) {
    if (!DB_NAME_RE.test(db)) throw new Error(`bad database name ${db}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'previewd-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  let started = false;
  // A test process that ends without stop() (a crash, a hook that timed out) leaves no server.
  const onExit = (): void => {
    if (!started) return;
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  process.on('exit', onExit);
  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    if (started) {
      started = false;
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run('cp', ['-a', await templateCluster(), data]);
    if (listen.some((a) => a !== '127.0.0.1' && a !== '::1')) {
      // Clients on the listen addresses' own subnets (the test's bridge) may connect too.
      appendFileSync(join(data, 'pg_hba.conf'), 'host all all samenet trust\n');
    }
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort(listen[0]!);
      const options = [
        `-p ${port}`,
        `-k ${dir}`,
        `-c listen_addresses=${listen.join(',')}`,
        '-c fsync=off',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
      ].join(' ');
      try {
        await asPostgres('pg_ctl', [
          '-D',
          data,
          '-w',
          '-t',
          '30',
          '-l',
          join(dir, 'log'),
          '-o',
          options,
          'start',
        ]);
        started = true;
        break;
      } catch (err) {
        // Another process took the port between the probe and the start: try another one.
        if (attempt >= 3) throw err;
      }
    }
    const host = listen[0]!;
    const urlFor = (db: string, via = host): string =>
      `postgres://postgres@${via.includes(':') ? `[${via}]` : via}:${port}/${db}`;
    const createDatabase = async (db: string): Promise<string> => {
      if (!DB_NAME_RE.test(db)) throw new Error(`bad database name ${db}`);
      await admin(urlFor('postgres'), `CREATE DATABASE ${db} STRATEGY FILE_COPY`);
      return urlFor(db);
    };
    for (const db of [database, ...(opts.databases ?? [])]) await createDatabase(db);
    return { url: urlFor(database), host, port, dir, urlFor, createDatabase, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
