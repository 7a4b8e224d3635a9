import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

// 'x' first: the 1 Mi-character piece boundary falls between the halves of a surrogate pair.
const text = `x${'\u{1F600}'.repeat(600_000)}\u00e9`;

type Page = {
  entries: { path: string; type: string }[];
  truncated: boolean;
  nextCursor?: string;
  truncatedBy?: string;
};

describe('files list and glob pages, downloads (real engine)', () => {
  let server: TestServer;
  let id: string;

  const get = (path: string) =>
    fetch(`${server.url}/v1/sandboxes/${id}${path}`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
  /** Every page of a list or glob query, following nextCursor. */
  const allPages = async (query: string): Promise<Page[]> => {
    const pages: Page[] = [];
    let cursor: string | undefined;
    do {
      const res = await server.call(
        'GET',
        `/v1/sandboxes/${id}/files/${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.status).toBe(200);
      pages.push(res.body);
      cursor = res.body.nextCursor;
      expect(pages.length).toBeLessThan(100);
    } while (cursor);
    return pages;
  };

  beforeAll(async () => {
    server = await startTestServer();
    const created = await server.call('POST', '/v1/sandboxes', {
      files: {
        'a.txt': 'a',
        'emoji.txt': text,
        'b/c.txt': 'c',
        'b/d/e.ts': 'e',
        'b/d/f.ts': 'f',
        'b/g.ts': 'g',
        'h.ts': 'h',
        'page.html': '<script>document.title = "ran"</script>',
        'logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        'odd "name";\u00e9.txt': 'x',
      },
      runtime: { start: 'exec sleep infinity' },
    });
    expect(created.status).toBe(201);
    id = created.body.id;
    await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('pages a recursive listing with cursors: the pages together are the whole listing, in order', async () => {
    const whole = await server.call('GET', `/v1/sandboxes/${id}/files/list?recursive=true`);
    expect(whole.body.truncated).toBe(false);
    expect(whole.body.nextCursor).toBeUndefined();
    const paths = whole.body.entries.map((e: { path: string }) => e.path);
    expect(paths).toEqual([
      'a.txt',
      'b',
      'b/c.txt',
      'b/d',
      'b/d/e.ts',
      'b/d/f.ts',
      'b/g.ts',
      'emoji.txt',
      'h.ts',
      'logo.svg',
      'odd "name";\u00e9.txt',
      'page.html',
    ]);
    const pages = await allPages('list?recursive=true&limit=2');
    expect(pages.length).toBe(6);
    for (const page of pages.slice(0, -1)) {
      expect(page).toMatchObject({ truncated: true, truncatedBy: 'limit' });
      expect(page.entries.length).toBe(2);
    }
    expect(pages.at(-1)?.truncated).toBe(false);
    expect(pages.flatMap((p) => p.entries.map((e) => e.path))).toEqual(paths);
  });

  it('pages a glob the same way', async () => {
    const pages = await allPages(`glob?pattern=${encodeURIComponent('**/*.ts')}&limit=1`);
    expect(pages.flatMap((p) => p.entries.map((e) => e.path))).toEqual([
      'b/d/e.ts',
      'b/d/f.ts',
      'b/g.ts',
      'h.ts',
    ]);
    const sub = await allPages(`glob?pattern=${encodeURIComponent('b/**/*.ts')}&limit=2`);
    expect(sub.flatMap((p) => p.entries.map((e) => e.path))).toEqual(['b/d/e.ts', 'b/d/f.ts', 'b/g.ts']);
  });

  it('refuses a forged or foreign cursor and a page past the maximum with invalid_request', async () => {
    const first = await server.call('GET', `/v1/sandboxes/${id}/files/list?path=b&limit=1`);
    expect(first.body.nextCursor).toBeDefined();
    const foreign = await server.call(
      'GET',
      `/v1/sandboxes/${id}/files/list?path=b/d&cursor=${encodeURIComponent(first.body.nextCursor)}`,
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.code).toBe('invalid_request');
    const forged = await server.call(
      'GET',
      `/v1/sandboxes/${id}/files/list?cursor=${Buffer.from('../x').toString('base64url')}`,
    );
    expect(forged.body.error.code).toBe('invalid_request');
    const junk = await server.call('GET', `/v1/sandboxes/${id}/files/list?cursor=*`);
    expect(junk.body.error.code).toBe('invalid_request');
    const big = await server.call('GET', `/v1/sandboxes/${id}/files/list?limit=10001`);
    expect(big.status).toBe(400);
    expect(big.body.error.code).toBe('invalid_request');
  });

  it('writes a big text of multi-byte characters intact (create writes it in pieces)', async () => {
    const back = await get('/files?path=emoji.txt');
    expect(Buffer.from(await back.arrayBuffer()).equals(Buffer.from(text, 'utf8'))).toBe(true);
  });

  it('serves files as downloads that never run on the API origin (HTML, SVG, archive)', async () => {
    for (const [path, type] of [
      ['page.html', 'text/html; charset=utf-8'],
      ['logo.svg', 'image/svg+xml'],
    ] as const) {
      const res = await get(`/files?path=${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename=${path}`);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toBe('sandbox');
      await res.arrayBuffer();
    }
    // A name with quotes, a separator and a non-ASCII letter: quoted, with the UTF-8 form beside it.
    const odd = await get(`/files?path=${encodeURIComponent('odd "name";\u00e9.txt')}`);
    expect(odd.status).toBe(200);
    expect(odd.headers.get('content-disposition')).toBe(
      `attachment; filename="odd \\"name\\";?.txt"; filename*=UTF-8''odd%20%22name%22%3B%C3%A9.txt`,
    );
    await odd.arrayBuffer();
    const tar = await get('/files/archive?path=b');
    expect(tar.status).toBe(200);
    expect(tar.headers.get('content-disposition')).toBe('attachment; filename=b.tar');
    expect(tar.headers.get('x-content-type-options')).toBe('nosniff');
    expect(tar.headers.get('content-security-policy')).toBe('sandbox');
    await tar.arrayBuffer();
  });
});
