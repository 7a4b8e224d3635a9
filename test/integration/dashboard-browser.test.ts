import { strToU8, unzipSync, zipSync } from 'fflate';
import type { Browser, BrowserContext, Frame, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenCookieScope } from '../../src/edge/edge-server.js';
import { ensureDashboardBuilt, launchChromium } from '../helpers/dashboard.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../helpers/server.js';

const SLOW = 120_000;

/** Signs in through the page's form (the only way the page gets a session). */
async function signIn(page: Page, server: TestServer, key = TEST_KEY): Promise<number> {
  await page.fill('#api-key', key);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${server.url}/v1/session` && r.request().method() === 'POST'),
    page.click('form.sign-in button[type=submit]'),
  ]);
  return res.status();
}

/** The frame of the preview iframe of sandbox `id` (null until it is there). */
function previewFrame(page: Page, id: string): Frame | undefined {
  return page.frames().find((f) => f.url().includes(`-${id}.preview.localhost`));
}

describe('the dashboard in a real browser (real server, real engine)', () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    ensureDashboardBuilt();
    server = await startTestServer();
    browser = await launchChromium();
  }, SLOW);
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
  });

  it('signs in with a cookie, creates from vite-react, edits with hot reload, runs ls, stops live', async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const requests: Request[] = [];
    page.on('request', (r) => requests.push(r));

    // A wrong key is refused and the page stays on sign-in.
    await page.goto(server.url);
    await page.waitForSelector('#api-key');
    expect(await signIn(page, server, 'not-the-key')).toBe(401);
    await page.waitForSelector('form.sign-in [role=alert]');
    expect(await page.textContent('form.sign-in [role=alert]')).toContain('refused');
    expect(await page.isVisible('#api-key')).toBe(true);

    // The right key: the list, with its empty state.
    expect(await signIn(page, server)).toBe(200);
    await page.waitForSelector('text=No sandboxes yet — create one from a template');
    await page.evaluate('window.__dashboardMarker = "kept"');

    // Create from vite-react: the row appears at once and its state moves live to running.
    await page.waitForSelector('#template option[value="vite-react"]', { state: 'attached' });
    await page.selectOption('#template', 'vite-react');
    const [created] = await Promise.all([
      page.waitForResponse(
        (r) => r.url() === `${server.url}/v1/sandboxes` && r.request().method() === 'POST',
      ),
      page.click('form.create-template button[type=submit]'),
    ]);
    expect(created.status()).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    const row = `tr[data-sandbox-id="${id}"]`;
    await page.waitForSelector(row, { timeout: 5_000 });
    const firstState = await page.getAttribute(`${row} [data-state]`, 'data-state');
    expect(['creating', 'starting']).toContain(firstState);
    await page.waitForSelector(`${row} [data-state="running"]`, { timeout: SLOW });
    expect(await page.textContent(row)).toContain('vite-react');
    expect(await page.getAttribute(`${row} a.port`, 'href')).toContain(`-${id}.preview.localhost`);

    // Open it (in-page navigation) and see the app in the iframe.
    await page.click(`${row} a[href="/sandboxes/${id}"]`);
    await page.waitForSelector(`main.sandbox-page[data-sandbox-id="${id}"]`);
    expect(new URL(page.url()).pathname).toBe(`/sandboxes/${id}`);
    await page.waitForSelector('iframe.preview-frame', { timeout: SLOW });
    const frame = await waitFor(async () => previewFrame(page, id), SLOW, 'the preview frame');
    await frame.waitForFunction(
      `document.getElementById('title')?.textContent === 'Hello from Vite + React'`,
      undefined,
      { timeout: SLOW },
    );
    await frame.evaluate('window.__previewMarker = 42');

    // Edit src/App.jsx in the editor and save with Ctrl-S: the iframe changes without a reload.
    const original = (await server.call('GET', `/v1/sandboxes/${id}/files?path=src/App.jsx`)).body as string;
    expect(original).toContain('Hello from Vite + React');
    const edited = original.replace('Hello from Vite + React', 'Edited in the dashboard');
    await page.click('button.tree-item.dir:has-text("src/")');
    await page.click('[data-path="src/App.jsx"]');
    await page.waitForSelector('.cm-content:has-text("Hello from Vite + React")');
    await page.click('.cm-content');
    await page.keyboard.press('Control+A');
    await page.keyboard.insertText(edited);
    await page.waitForSelector('[data-save-status="dirty"]');
    await page.keyboard.press('Control+S');
    await page.waitForSelector('[data-save-status="saved"]', { timeout: 10_000 });
    expect((await server.call('GET', `/v1/sandboxes/${id}/files?path=src/App.jsx`)).body).toBe(edited);
    await frame.waitForFunction(
      `document.getElementById('title')?.textContent === 'Edited in the dashboard'`,
      undefined,
      { timeout: 30_000 },
    );
    expect(await frame.evaluate('window.__previewMarker')).toBe(42);

    // The terminal: a shell on the exec WebSocket; `ls` lists the workspace.
    await page.waitForSelector('[data-terminal-status="open"]', { timeout: 30_000 });
    await page.click('.term-host');
    await page.keyboard.type('ls');
    await page.keyboard.press('Enter');
    // (The dashboard's CSP forbids eval, so poll the text rather than waitForFunction with a string.)
    await waitFor(
      async () =>
        (await page.textContent('.term-host .xterm-rows'))?.includes('package.json') ? true : undefined,
      15_000,
      '`ls` output in the terminal',
    );

    // A second tab on the list (same session), loaded and live before the stop: it learns of
    // the stop from the event stream alone (no reload, no list request).
    const other = await context.newPage();
    await other.goto(server.url);
    await other.waitForSelector(`${row} [data-state="running"]`);
    await other.waitForSelector('.live-open');
    const otherRequests: Request[] = [];
    other.on('request', (r) => otherRequests.push(r));

    // Stop: the state changes live on this page, the preview frame goes away (no wake), and the
    // list shows it stopped too.
    await page.click('.sandbox-head button:has-text("Stop")');
    await page.waitForSelector('.sandbox-head [data-state="stopped"]', { timeout: 60_000 });
    expect(await page.$('iframe.preview-frame')).toBeNull();
    await other.waitForSelector(`${row} [data-state="stopped"]`, { timeout: 30_000 });
    expect(otherRequests.filter((r) => new URL(r.url()).pathname === '/v1/sandboxes')).toEqual([]);
    expect(otherRequests.every((r) => r.resourceType() !== 'document')).toBe(true);
    await other.close();
    await page.click('a.back');
    await page.waitForSelector(`${row} [data-state="stopped"]`, { timeout: 10_000 });
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('stopped');

    // One document the whole way (in-page routing, live updates: the marker survived), no list polling.
    expect(await page.evaluate('window.__dashboardMarker')).toBe('kept');
    const listGets = requests.filter(
      (r) => new URL(r.url()).pathname === '/v1/sandboxes' && r.method() === 'GET',
    );
    expect(listGets.length).toBeLessThan(8);

    // The session is an HttpOnly cookie; the page keeps nothing of the key.
    expect(await page.evaluate('document.cookie')).not.toContain('previewd_session');
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    const cookie = (await context.cookies(server.url)).find((c) => c.name === 'previewd_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

    // Sign out ends the session for the page.
    await page.click('button:has-text("Sign out")');
    await page.waitForSelector('#api-key');
    expect(await page.evaluate(`fetch('/v1/session').then((r) => r.status)`)).toBe(401);
  }, 360_000);

  it('shows a private sandbox in the iframe: a fresh token, and its cookie reaches sub-requests', async () => {
    const created = await server.call('POST', '/v1/sandboxes', { template: 'static', visibility: 'private' });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await ctx.newPage();
      const minted = page.waitForResponse((r) => r.url().endsWith(`/v1/sandboxes/${id}/preview-tokens`), {
        timeout: SLOW,
      });
      await page.goto(`${server.url}/sandboxes/${id}`);
      expect(await signIn(page, server)).toBe(200);
      await page.waitForSelector(
        `main.sandbox-page[data-sandbox-id="${id}"] .sandbox-head [data-state="running"]`,
        {
          timeout: SLOW,
        },
      );
      await page.waitForSelector('iframe.preview-frame', { timeout: SLOW });
      expect((await minted).status()).toBe(201);
      const frame = await waitFor(async () => previewFrame(page, id), SLOW, 'the preview frame');
      await frame.waitForFunction(
        `document.getElementById('title')?.textContent === 'Hello from a static site'`,
        undefined,
        { timeout: SLOW },
      );
      // The token went into the frame's URL once; the edge answered with its cookie and
      // redirected: the frame's URL no longer carries the token.
      expect(frame.url()).not.toContain('previewd_token');
      // style.css is a sub-request of the cross-site frame: it carried the cookie (else 401, unstyled).
      await frame.waitForFunction(`getComputedStyle(document.body).display === 'grid'`, undefined, {
        timeout: 15_000,
      });
      const log = await server.call('GET', `/v1/sandboxes/${id}/access-log?limit=50`);
      const css = (log.body.entries as { path: string; status: number }[]).find(
        (e) => e.path === '/style.css',
      );
      expect(css?.status).toBe(200);
      expect((log.body.entries as { status: number }[]).some((e) => e.status === 401)).toBe(false);
    } finally {
      await ctx.close();
    }
  }, 240_000);

  it('creates from a zip (every file in one zip body of the create), filters the list, and stops in bulk', async () => {
    const html = '<!doctype html><title>zip</title><h1 id="title">from a zip</h1>';
    // Not UTF-8: the PNG signature, then every byte value (NUL and 0x80..0xff among them).
    const png = new Uint8Array([
      0x89,
      0x50,
      0x4e,
      0x47,
      0x0d,
      0x0a,
      0x1a,
      0x0a,
      ...Array.from({ length: 256 }, (_, i) => i),
    ]);
    const zip = zipSync({
      'site/index.html': strToU8(html),
      'site/notes.md': strToU8('# notes\n'),
      'site/img/logo.png': png,
      'site/node_modules/x/index.js': strToU8('skipped'),
    });
    const readRaw = async (id: string, path: string) => {
      const res = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`, {
        headers: { authorization: `Bearer ${TEST_KEY}` },
      });
      expect(res.status).toBe(200);
      return Buffer.from(await res.arrayBuffer());
    };
    const ctx = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    try {
      const page = await ctx.newPage();
      await page.goto(server.url);
      expect(await signIn(page, server)).toBe(200);
      await page.waitForSelector('section.dropzone');
      const chooseZip = () =>
        page.setInputFiles('input[type=file][accept*="zip"]', {
          name: 'site.zip',
          mimeType: 'application/zip',
          buffer: Buffer.from(zip),
        });
      await chooseZip();
      await page.waitForSelector('text=3 file(s) ready (2 text, 1 binary)');
      const uploads: string[] = [];
      page.on('request', (r) => {
        if (r.method() === 'POST' && r.url().startsWith(`${server.url}/v1/sandboxes`)) uploads.push(r.url());
      });
      const [created] = await Promise.all([
        page.waitForResponse(
          (r) => r.url() === `${server.url}/v1/sandboxes` && r.request().method() === 'POST',
        ),
        page.click('button:has-text("Create from upload")'),
      ]);
      expect(created.status()).toBe(201);
      const id = ((await created.json()) as { id: string }).id;
      // One request: a zip body, the options in X-Previewd-Create.
      const headers = created.request().headers();
      expect(headers['content-type']).toBe('application/zip');
      expect(JSON.parse(headers['x-previewd-create'] ?? '')).toEqual({ visibility: 'public' });
      const sent = unzipSync(new Uint8Array(created.request().postDataBuffer() ?? Buffer.alloc(0)));
      // Every file, the common folder dropped, node_modules left out.
      expect(Object.keys(sent).sort()).toEqual(['img/logo.png', 'index.html', 'notes.md']);
      expect((await server.call('GET', `/v1/sandboxes/${id}/files?path=index.html`)).body).toBe(html);
      expect((await readRaw(id, 'img/logo.png')).equals(Buffer.from(png))).toBe(true);
      expect(uploads).toEqual([`${server.url}/v1/sandboxes`]);
      // Done: the progress bar goes away, no error shown.
      await page.waitForSelector('section.dropzone progress', { state: 'detached' });
      expect(await page.$('section.create [role=alert]')).toBeNull();
      const row = `tr[data-sandbox-id="${id}"]`;
      await page.waitForSelector(row, { timeout: 5_000 });
      await page.waitForSelector(`${row} [data-state="running"]`, { timeout: SLOW });

      // Search narrows the list to this sandbox; the state filter keeps it while it runs.
      await page.fill('input[type=search]', id);
      await page.selectOption('select:near(:text("State"))', 'running');
      expect(await page.$$eval('tr[data-sandbox-id]', (rows) => rows.length)).toBe(1);

      // Bulk stop of the selection: the row moves to stopped live (and so leaves the running filter).
      await page.selectOption('select:near(:text("State"))', '');
      await page.check(`${row} input[type=checkbox]`);
      await page.click('button:has-text("Stop selected")');
      await page.waitForSelector(`${row} [data-state="stopped"]`, { timeout: 60_000 });
      expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('stopped');

      // An archive the server refuses (an entry climbing out of the workspace): no sandbox, and
      // the page shows the API's code, message and hint; the upload stays ready to fix.
      await page.fill('input[type=search]', '');
      const before = (await server.call('GET', '/v1/sandboxes')).body.sandboxes.length as number;
      await page.setInputFiles('input[type=file][accept*="zip"]', {
        name: 'bad.zip',
        mimeType: 'application/zip',
        buffer: Buffer.from(zipSync({ 'index.html': strToU8(html), '../evil.txt': strToU8('out') })),
      });
      await page.waitForSelector('text=2 file(s) ready (2 text, 0 binary)');
      const [refused] = await Promise.all([
        page.waitForResponse(
          (r) => r.url() === `${server.url}/v1/sandboxes` && r.request().method() === 'POST',
        ),
        page.click('button:has-text("Create from upload")'),
      ]);
      expect(refused.status()).toBe(400);
      const error = ((await refused.json()) as { error: { code: string; hint: string } }).error;
      expect(error.code).toBe('invalid_path');
      const note = await page.waitForSelector('section.create [role=alert]');
      expect(await note.$eval('[data-error-code]', (el) => el.getAttribute('data-error-code'))).toBe(
        'invalid_path',
      );
      expect(await note.textContent()).toContain(error.hint);
      expect((await server.call('GET', '/v1/sandboxes')).body.sandboxes.length).toBe(before);
      expect(await page.$('button:has-text("Create from upload")')).not.toBeNull();
    } finally {
      await ctx.close();
    }
  }, 240_000);
});

describe('the preview-token cookie scope', () => {
  it('is None; Secure; Partitioned on http *.localhost, Lax on other http hosts, None; Secure over TLS', () => {
    expect(tokenCookieScope(false, '3000-abc.preview.localhost:8080')).toBe(
      'SameSite=None; Secure; Partitioned',
    );
    expect(tokenCookieScope(false, 'LOCALHOST')).toBe('SameSite=None; Secure; Partitioned');
    expect(tokenCookieScope(false, '3000-abc.preview.example.com:8080')).toBe('SameSite=Lax');
    expect(tokenCookieScope(false, 'localhost.example.com')).toBe('SameSite=Lax');
    expect(tokenCookieScope(true, '3000-abc.preview.example.com')).toBe('SameSite=None; Secure');
  });
});
