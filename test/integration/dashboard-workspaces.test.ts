import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboardBuilt, launchChromium } from '../helpers/dashboard.js';
import { edgeJson, previewHostOf } from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';
import { makePng, makeRepository, sha256, startGitDaemon, startGitHttp } from '../helpers/source-fixtures.js';

const SLOW = 120_000;
const TENANT = 'tenant-key-dora-0123456789';

/** Reads logo.png once, at boot, and answers its sha256 ("missing" when it was not there then). */
const APP = `
const fs = require('node:fs');
const digest = fs.existsSync('logo.png')
  ? require('node:crypto').createHash('sha256').update(fs.readFileSync('logo.png')).digest('hex')
  : 'missing';
require('node:http').createServer((req, res) => res.end(digest)).listen(3000, '0.0.0.0');
`;

async function signIn(page: Page, server: TestServer, key = TEST_KEY): Promise<void> {
  await page.fill('#api-key', key);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${server.url}/v1/session` && r.request().method() === 'POST'),
    page.click('form.sign-in button[type=submit]'),
  ]);
  expect(res.status()).toBe(200);
}

/** The response of the page's next `POST /v1/sandboxes` (created by `act`). */
async function createdBy(page: Page, server: TestServer, act: () => Promise<unknown>) {
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${server.url}/v1/sandboxes` && r.request().method() === 'POST', {
      timeout: SLOW,
    }),
    act(),
  ]);
  return res;
}

describe('the dashboard: git source, snapshots and fork (real browser, server and engine)', () => {
  const png = makePng();
  const digest = sha256(png);
  // main has a README only; the app and its binary asset are on `feature` (so the ref field counts).
  const repo = makeRepository({ 'README.md': 'main only\n' }, { 'server.js': APP, 'logo.png': png });
  const token = 'tok-dashboard-0123456789';
  let daemon: Awaited<ReturnType<typeof startGitDaemon>>;
  let http: Awaited<ReturnType<typeof startGitHttp>>;
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;

  /** The sandbox's app answers the digest of the logo it read at boot: it was there before the start. */
  const servesDigest = async (id: string) => {
    await waitState(server, id, 'running', SLOW);
    const answer = await waitFor(
      async () => {
        const res = await edgeJson(server, previewHostOf(id), '/');
        return res.status === 200 ? res.text : undefined;
      },
      60_000,
      `sandbox ${id}'s app to answer`,
    );
    expect(answer).toBe(digest);
  };

  beforeAll(async () => {
    ensureDashboardBuilt();
    daemon = await startGitDaemon(repo.base, repo.name);
    http = await startGitHttp(repo.base, token);
    server = await startTestServer({
      'sources.allowPrivateGit': true,
      apiKeys: [TEST_KEY, `${TENANT}:dora`],
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // One session for the context (the cookie), signed in through the page's form.
    const page = await context.newPage();
    await page.goto(server.url);
    await signIn(page, server);
    await page.close();
  }, SLOW);
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
    await http?.close();
    daemon?.stop();
    repo.remove();
  });

  it(
    'refuses a repository URL with the API code and hint, and makes no sandbox',
    async () => {
      const page = await context.newPage();
      await page.goto(server.url);
      await page.waitForSelector('#git-url');
      const before = (await server.call('GET', '/v1/sandboxes')).body.sandboxes.length as number;
      const res = await createdBy(page, server, async () => {
        await page.fill('#git-url', 'file:///etc/previewd-repo');
        await page.click('form.create-git button[type=submit]');
      });
      expect(res.status()).toBe(400);
      const body = (await res.json()) as { error: { code: string; hint?: string } };
      expect(body.error.code).toBe('git_source_refused');
      const note = await page.waitForSelector('form.create-git [role=alert]');
      expect(await note.$eval('[data-error-code]', (el) => el.getAttribute('data-error-code'))).toBe(
        'git_source_refused',
      );
      expect(body.error.hint).toBeTruthy();
      expect(await note.textContent()).toContain(body.error.hint);
      expect((await server.call('GET', '/v1/sandboxes')).body.sandboxes.length).toBe(before);

      // A ref the repository does not have: git's refusal, with its code.
      const missing = await createdBy(page, server, async () => {
        await page.fill('#git-url', daemon.url);
        await page.fill('#git-ref', 'no-such-branch');
        await page.click('form.create-git button[type=submit]');
      });
      expect(missing.status()).toBe(422);
      await page.waitForSelector('form.create-git [data-error-code="git_clone_failed"]');
      await page.close();
    },
    SLOW,
  );

  it(
    'on a server that refuses private git hosts, the loopback repository shows git_source_refused and its hint',
    async () => {
      const strict = await startTestServer();
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const page = await ctx.newPage();
        await page.goto(strict.url);
        await signIn(page, strict);
        await page.waitForSelector('#git-url');
        const res = await createdBy(page, strict, async () => {
          await page.fill('#git-url', daemon.url);
          await page.click('form.create-git button[type=submit]');
        });
        expect(res.status()).toBe(400);
        await page.waitForSelector('form.create-git [data-error-code="git_source_refused"]');
        expect(await page.textContent('form.create-git [role=alert]')).toContain('sources.allowPrivateGit');
        expect((await strict.call('GET', '/v1/sandboxes')).body.sandboxes).toEqual([]);
      } finally {
        await ctx.close();
        await strict.close();
      }
    },
    SLOW,
  );

  it(
    'sends a chosen folder as one zip: the binary file is there when the app starts',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'previewd-ui-folder-'));
      try {
        mkdirSync(join(dir, 'my-app', 'node_modules', 'x'), { recursive: true });
        writeFileSync(join(dir, 'my-app', 'server.js'), APP);
        writeFileSync(join(dir, 'my-app', 'logo.png'), png);
        writeFileSync(join(dir, 'my-app', 'node_modules', 'x', 'index.js'), 'left out');
        const page = await context.newPage();
        const posts: string[] = [];
        page.on('request', (r) => {
          if (r.method() === 'POST' && r.url().startsWith(`${server.url}/v1/sandboxes`)) posts.push(r.url());
        });
        await page.goto(server.url);
        await page.waitForSelector('section.dropzone');
        await page.setInputFiles('input[type=file][webkitdirectory]', join(dir, 'my-app'));
        await page.waitForSelector('text=2 file(s) ready (1 text, 1 binary)');
        const res = await createdBy(page, server, () => page.click('button:has-text("Create from upload")'));
        expect(res.status()).toBe(201);
        expect(res.request().headers()['content-type']).toBe('application/zip');
        const id = ((await res.json()) as { id: string }).id;
        // No second request, no restart: the app read the logo at boot.
        await servesDigest(id);
        expect(posts).toEqual([`${server.url}/v1/sandboxes`]);
        await page.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    SLOW,
  );

  it('creates from a repository, snapshots it, lists, creates from the snapshot, forks, deletes the snapshot', async () => {
    const page = await context.newPage();
    const requests: Request[] = [];
    page.on('request', (r) => requests.push(r));
    const serverErrors: string[] = [];
    page.on('response', (r) => {
      // The API's answers (a preview frame may see the edge's 503 while its app is still starting).
      if (r.status() >= 500 && r.url().startsWith(server.url)) serverErrors.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(server.url);
    await page.waitForSelector('#git-url');

    // Create from the repository over git://, branch `feature`, depth 1.
    const created = await createdBy(page, server, async () => {
      await page.fill('#git-url', daemon.url);
      await page.fill('#git-ref', 'feature');
      await page.fill('#git-depth', '1');
      await page.click('form.create-git button[type=submit]');
    });
    expect(created.status()).toBe(201);
    expect(JSON.parse(created.request().postData() ?? '{}')).toEqual({
      source: { git: { url: daemon.url, ref: 'feature', depth: 1 } },
      visibility: 'public',
    });
    const id = ((await created.json()) as { id: string }).id;
    const row = `tr[data-sandbox-id="${id}"]`;
    await page.waitForSelector(row, { timeout: 5_000 });
    await page.waitForSelector(`${row} [data-state="running"]`, { timeout: SLOW });
    await servesDigest(id);
    expect(await page.inputValue('#git-url')).toBe('');

    // Over http with a token: sent once in the create, the field emptied, nowhere in the page.
    const withToken = await createdBy(page, server, async () => {
      await page.fill('#git-url', `${http.url}/${repo.name}`);
      await page.fill('#git-ref', 'feature');
      await page.fill('#git-token', token);
      await page.click('form.create-git button[type=submit]');
    });
    expect(withToken.status()).toBe(201);
    expect(JSON.parse(withToken.request().postData() ?? '{}').source.git.token).toBe(token);
    expect(http.seen).toContain(`Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`);
    expect(await page.inputValue('#git-token')).toBe('');
    expect(await page.content()).not.toContain(token);
    const tokenId = ((await withToken.json()) as { id: string }).id;
    await servesDigest(tokenId);
    expect(JSON.stringify((await server.call('GET', `/v1/sandboxes/${tokenId}`)).body)).not.toContain(token);

    // Open the first sandbox and take a snapshot with a name and a label.
    await page.click(`${row} a[href="/sandboxes/${id}"]`);
    await page.waitForSelector(
      `main.sandbox-page[data-sandbox-id="${id}"] .sandbox-head [data-state="running"]`,
    );
    await page.click('button:has-text("Snapshot…")');
    await page.fill('#snapshot-name', 'from-the-page');
    await page.fill('#snapshot-labels', 'kind=ui, team=web');
    expect(await page.inputValue('#snapshot-name')).toBe('from-the-page');
    const [snapRes] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${server.url}/v1/sandboxes/${id}/snapshots`, {
        timeout: SLOW,
      }),
      page.click('form.snapshot-form button[type=submit]'),
    ]);
    expect(snapRes.status()).toBe(201);
    expect(JSON.parse(snapRes.request().postData() ?? '{}')).toEqual({
      name: 'from-the-page',
      labels: { kind: 'ui', team: 'web' },
    });
    const snapId = ((await snapRes.json()) as { id: string }).id;
    await page.waitForSelector(`.snapshot-fork [data-snapshot-id="${snapId}"]`);

    // A label that is not key=value is refused in the page, before any request.
    await page.click('button:has-text("Snapshot…")');
    await page.fill('#snapshot-labels', 'novalue');
    const snapshotPosts = () => requests.filter((r) => r.url().endsWith(`/${id}/snapshots`)).length;
    const posted = snapshotPosts();
    await page.click('form.snapshot-form button[type=submit]');
    await page.waitForSelector('.snapshot-fork [role=alert]:has-text("novalue")');
    expect(snapshotPosts()).toBe(posted);
    await page.click('form.snapshot-form button:has-text("Cancel")');

    // Fork: the new sandbox's page opens; its app started fresh from the same files.
    const [forkRes] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${server.url}/v1/sandboxes/${id}/fork`, { timeout: SLOW }),
      page.click('.snapshot-fork button:has-text("Fork")'),
    ]);
    expect(forkRes.status()).toBe(201);
    const forkId = ((await forkRes.json()) as { id: string }).id;
    expect(forkId).not.toBe(id);
    await page.waitForSelector(`main.sandbox-page[data-sandbox-id="${forkId}"]`, { timeout: 10_000 });
    expect(new URL(page.url()).pathname).toBe(`/sandboxes/${forkId}`);
    await page.waitForSelector('.sandbox-head [data-state="running"]', { timeout: SLOW });
    await servesDigest(forkId);

    // The snapshots page: the snapshot with its name, size, age, source sandbox and labels.
    await page.click('nav a:has-text("Snapshots")');
    expect(new URL(page.url()).pathname).toBe('/snapshots');
    const snapRow = `tr[data-snapshot-id="${snapId}"]`;
    await page.waitForSelector(snapRow);
    const text = (await page.textContent(snapRow)) ?? '';
    expect(text).toContain('from-the-page');
    expect(text).toMatch(/\d+ MB/);
    expect(text).toContain('ago');
    expect(text).toContain('kind=ui, team=web');
    expect(await page.getAttribute(`${snapRow} a`, 'href')).toBe(`/sandboxes/${id}`);

    // Create a sandbox from it: its page opens, the app reads the logo at boot.
    const fromSnap = await createdBy(page, server, () =>
      page.click(`${snapRow} button:has-text("Create sandbox")`),
    );
    expect(fromSnap.status()).toBe(201);
    expect(JSON.parse(fromSnap.request().postData() ?? '{}')).toEqual({ snapshot: snapId });
    const fromSnapId = ((await fromSnap.json()) as { id: string }).id;
    await page.waitForSelector(`main.sandbox-page[data-sandbox-id="${fromSnapId}"]`, { timeout: 10_000 });
    await servesDigest(fromSnapId);

    // The page path loads on its own too (the server serves the page at /snapshots).
    await page.goto(`${server.url}/snapshots`);
    await page.waitForSelector(snapRow);

    // Delete, with a confirm: dismissing keeps it, accepting deletes it.
    page.once('dialog', (d) => void d.dismiss());
    await page.click(`${snapRow} button:has-text("Delete")`);
    expect((await server.call('GET', `/v1/snapshots/${snapId}`)).status).toBe(200);
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.accept();
    });
    const [deleted] = await Promise.all([
      page.waitForResponse(
        (r) => r.url() === `${server.url}/v1/snapshots/${snapId}` && r.request().method() === 'DELETE',
      ),
      page.click(`${snapRow} button:has-text("Delete")`),
    ]);
    expect(deleted.status()).toBe(200);
    expect(asked).toContain('from-the-page');
    await page.waitForSelector(snapRow, { state: 'detached' });
    await page.waitForSelector('text=No snapshots yet');
    expect((await server.call('GET', `/v1/snapshots/${snapId}`)).status).toBe(404);
    // The sandbox made from it keeps its files.
    expect((await edgeJson(server, previewHostOf(fromSnapId), '/')).text).toBe(digest);

    // Nothing the page asked the API answered 5xx.
    expect(serverErrors).toEqual([]);
    await page.close();
  }, 480_000);
  it(
    "a tenant's snapshots page lists its own snapshots only, and a sandbox from one is its own",
    async () => {
      const asTenant = { authorization: `Bearer ${TENANT}` };
      const create = async (headers?: Record<string, string>) => {
        const res = await server.call('POST', '/v1/sandboxes', { template: 'static' }, headers);
        expect(res.status).toBe(201);
        await waitState(server, res.body.id, 'running', SLOW);
        return res.body.id as string;
      };
      const snap = async (id: string, name: string, headers?: Record<string, string>) => {
        const res = await server.call('POST', `/v1/sandboxes/${id}/snapshots`, { name }, headers);
        expect(res.status).toBe(201);
        return res.body.id as string;
      };
      const dorasSnap = await snap(await create(asTenant), 'doras-own', asTenant);
      const adminSnap = await snap(await create(), 'admins-own');

      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const page = await ctx.newPage();
        await page.goto(`${server.url}/snapshots`);
        await signIn(page, server, TENANT);
        await page.waitForSelector(`tr[data-snapshot-id="${dorasSnap}"]`);
        expect(
          await page.$$eval('tr[data-snapshot-id]', (rows) =>
            rows.map((r) => r.getAttribute('data-snapshot-id')),
          ),
        ).toEqual([dorasSnap]);
        expect(await page.content()).not.toContain(adminSnap);
        const res = await createdBy(page, server, () =>
          page.click(`tr[data-snapshot-id="${dorasSnap}"] button:has-text("Create sandbox")`),
        );
        expect(res.status()).toBe(201);
        const made = (await res.json()) as { id: string; owner?: string };
        expect(made.owner).toBe('dora');
        await page.waitForSelector(`main.sandbox-page[data-sandbox-id="${made.id}"]`);
      } finally {
        await ctx.close();
      }
    },
    SLOW,
  );
});
