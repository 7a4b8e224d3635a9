import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readyzSeen, whileWatched } from '../helpers/readyz-watch.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

/**
 * Inputs that used to hold the whole process (API and edge) for seconds to minutes, each sent while
 * /readyz is polled: every poll must answer within 1 s, and the request itself must get a 2xx or a
 * clear 4xx with a stable code.
 */

const LONG = 'a'.repeat(251);
const alternatives = `{${Array.from({ length: 8 }, (_, i) => 'a'.repeat(i + 1)).join(',')}}`;
/** At the limits: 2 stars in each of 2 segments, the largest group in each, 2 globstars. */
const LIMIT_PATTERN = `limits/**/*${alternatives}*b/**/*${alternatives}*b`;

/** Builds the trees in the sandbox (node runs inside it: one exec instead of 100 000 writes). */
const populate = `
const fs = require('node:fs');
fs.mkdirSync('aaa');
fs.writeFileSync('aaa/' + 'a'.repeat(200), '');
fs.mkdirSync('limits/aab', { recursive: true });
for (let i = 1000; i < 3000; i++) fs.writeFileSync('limits/aab/${LONG}' + i, '');
fs.writeFileSync('limits/aab/xab', '');
fs.mkdirSync('big');
for (let i = 0; i < 100000; i++) fs.closeSync(fs.openSync('big/entry-' + String(i).padStart(6, '0'), 'w'));
fs.mkdirSync('deep/' + Array(80).fill('d').join('/'), { recursive: true });
fs.writeFileSync('deep/' + Array(80).fill('d').join('/') + '/leaf.txt', '');
console.log('ok');
`;

describe('pathological input: nothing blocks the process (real engine)', () => {
  let server: TestServer;
  let id: string;
  const files = (query: string) => server.call('GET', `/v1/sandboxes/${id}/files/${query}`);

  beforeAll(async () => {
    server = await startTestServer();
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    expect(created.status).toBe(201);
    id = created.body.id;
    await waitState(server, id, 'running');
    const made = await server.call('POST', `/v1/sandboxes/${id}/exec`, {
      cmd: ['node', '-e', populate],
      timeoutSec: 300,
    });
    expect(made.body).toMatchObject({ exitCode: 0, stdout: 'ok\n' });
  }, 320_000);

  afterAll(async () => {
    console.log(`[readyz] longest wait of all: ${readyzSeen.longest.toFixed(1)} ms (${readyzSeen.label})`);
    await server?.close();
  });

  it('the glob that froze the process for a minute is refused at once with invalid_pattern', async () => {
    const res = await whileWatched(server.url, 'glob *a*a…*b against a 200-a name', () =>
      files(`glob?pattern=${encodeURIComponent('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b')}`),
    );
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_pattern');
    // The most of it that is allowed runs, and answers.
    const allowed = await files(`glob?pattern=${encodeURIComponent('aaa/*a*b')}`);
    expect(allowed.status).toBe(200);
    expect(allowed.body).toMatchObject({ entries: [], truncated: false });
  });

  it('a glob at the limits against 2 000 names of 255 characters answers, the process stays responsive', async () => {
    // On a loaded machine the walk may spend its time budget first and answer with a cursor: the
    // pages together are the answer.
    const pages = await whileWatched(server.url, 'glob at the limits, 255-char names', async () => {
      const seen: any[] = [];
      let cursor: string | undefined;
      do {
        const res = await files(
          `glob?pattern=${encodeURIComponent(LIMIT_PATTERN)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        expect(res.status).toBe(200);
        seen.push(res.body);
        cursor = res.body.nextCursor ?? undefined;
      } while (cursor && seen.length < 50);
      return seen;
    });
    expect(pages.flatMap((p) => p.entries.map((e: { path: string }) => e.path))).toEqual(['limits/aab/xab']);
    expect(pages.at(-1).nextCursor ?? null).toBeNull();
    expect(pages.every((p) => p.truncatedBy === undefined || p.truncatedBy === 'walk_budget')).toBe(true);
  }, 60_000);

  it('a 60 MB vite.config.js of the text that stressed the old scan is created, its content unknown', async () => {
    // Encoded before the watch starts: the client shares the process with the server.
    const body = Buffer.from(
      JSON.stringify({
        files: {
          'package.json': JSON.stringify({ scripts: { dev: 'vite' }, devDependencies: { vite: '5' } }),
          'vite.config.js': 'server: { '.repeat(6 * 1024 * 1024),
        },
        runtime: { start: 'exec sleep infinity' },
      }),
    );
    expect(body.length).toBeGreaterThan(60 * 1024 * 1024);
    const res = await whileWatched(server.url, 'create with a 60 MB vite.config.js', async () => {
      const answer = await fetch(`${server.url}/v1/sandboxes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body,
      });
      return { status: answer.status, body: (await answer.json()) as { id: string; runtime: unknown } };
    });
    expect(res.status).toBe(201);
    // Too big to read: detection treats the config as unknown and keeps Vite's default port.
    expect(res.body.runtime).toMatchObject({ framework: 'vite', port: 5173 });
    const written = await server.call('GET', `/v1/sandboxes/${res.body.id}/files/stat?path=vite.config.js`);
    expect(written.body.size).toBe(6 * 1024 * 1024 * 10);
    await server.app.service.delete(res.body.id);
  }, 120_000);

  it('a directory of 100 000 entries is answered in pages', async () => {
    const first = await whileWatched(server.url, 'list of a 100 000-entry directory', () =>
      files('list?path=big'),
    );
    expect(first.status).toBe(200);
    expect(first.body.entries.length).toBe(1000);
    expect(first.body).toMatchObject({ truncated: true, truncatedBy: 'limit' });
    expect(first.body.entries[0].path).toBe('big/entry-000000');
    const full = await whileWatched(server.url, 'the largest page of it', () =>
      files(`list?path=big&limit=10000&cursor=${encodeURIComponent(first.body.nextCursor)}`),
    );
    expect(full.status).toBe(200);
    expect(full.body.entries.length).toBe(10_000);
    expect(full.body.entries[0].path).toBe('big/entry-001000');
    expect(full.body.entries.at(-1).path).toBe('big/entry-010999');
    const tooMany = await files('list?path=big&limit=100000');
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.code).toBe('invalid_request');
  }, 60_000);

  it('a deep tree: the glob stops at the depth limit and says so', async () => {
    const res = await whileWatched(server.url, 'glob over an 80-level tree', () =>
      files(`glob?pattern=${encodeURIComponent('deep/**/leaf.txt')}`),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ entries: [], truncated: true, truncatedBy: 'depth' });
    expect(res.body.nextCursor).toBeUndefined();
  });

  it('a glob over the whole workspace spends its walk budget and continues from its cursor', async () => {
    const pattern = encodeURIComponent('**/nothing-is-called-this');
    const pages = await whileWatched(
      server.url,
      'glob walking 100 000+ entries in budgeted pages',
      async () => {
        const seen = [];
        let cursor: string | undefined;
        do {
          const res = await files(
            `glob?pattern=${pattern}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          );
          expect(res.status).toBe(200);
          seen.push(res.body);
          cursor = res.body.nextCursor;
        } while (cursor && seen.length < 20);
        return seen;
      },
    );
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages[0]).toMatchObject({ entries: [], truncated: true, truncatedBy: 'walk_budget' });
    // The last page went to the end of the tree (only the deep tree's bottom was out of reach).
    expect(pages.at(-1)).toMatchObject({ entries: [], truncatedBy: 'depth' });
    expect(pages.at(-1).nextCursor).toBeUndefined();
  }, 120_000);
});
