/**
 * bench/preview: per template, create → first byte of the preview through the edge with a cold
 * host (empty npm download cache, no cached template dependencies: the first sandbox from it) and
 * with a warm one (the template's node_modules cached), then file write (files API) → change
 * visible: in Chromium for the templates that update the open page (Vite and Next HMR, the static
 * live reload), over HTTP for the servers that restart or reload (express, fastapi, flask).
 *
 *   node --import tsx bench/preview.ts [--part templates|projects|all] [--edits 10] [--only vite-react,static]
 *                                      [--projects react,vue] [--rounds 3] [--pool 2]
 *
 * `--part projects` (bench/preview-projects.ts): create-vite's own templates fetched with `npm pack
 * create-vite` at bench time — lockfile never seen vs seen (dependency layer) vs seen with a warm
 * pool, fork → preview, and a static site beside `docker run` and the warm pool.
 *
 * Anchors (the goals): static ≤ 1 s, React ≤ 5 s with a warm cache, ≤ 300 ms per edit.
 */
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/browser.js';
import { edgeJson, previewHostOf } from '../test/helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor } from '../test/helpers/server.js';
import { projectsBench } from './preview-projects.js';
import { printTable, summary } from './stats.js';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const EDITS = Number(opt('edits') ?? 10);
const PART = opt('part') ?? 'all';

interface Spec {
  port: number;
  file: string;
  text: string;
  /** Where the edit shows: the open page (HMR / live reload) or a fresh HTTP GET. */
  visible: 'browser' | 'http';
  anchorCreate?: string;
}

const specs: Record<string, Spec> = {
  static: {
    port: 8080,
    file: 'index.html',
    text: 'Hello from a static site',
    visible: 'browser',
    anchorCreate: '≤ 1 s',
  },
  'vite-react': {
    port: 5173,
    file: 'src/App.jsx',
    text: 'Hello from Vite + React',
    visible: 'browser',
    anchorCreate: '≤ 5 s warm',
  },
  'vite-vue': { port: 5173, file: 'src/App.vue', text: 'Hello from Vite + Vue', visible: 'browser' },
  next: { port: 3000, file: 'app/page.jsx', text: 'Hello from Next.js', visible: 'browser' },
  express: { port: 3000, file: 'server.js', text: 'Hello from Express', visible: 'http' },
  fastapi: { port: 8000, file: 'main.py', text: 'Hello from FastAPI', visible: 'http' },
  flask: { port: 5000, file: 'app.py', text: 'Hello from Flask', visible: 'http' },
};
const only = opt('only')?.split(',');
const templates = Object.keys(specs).filter((t) => !only || only.includes(t));

async function edgeGet(
  server: TestServer,
  host: string,
  path = '/',
): Promise<{ status: number; text: string }> {
  const res = await edgeJson(server, host, path).catch(() => undefined);
  return res ? { status: res.status, text: res.text } : { status: 0, text: '' };
}

/** POST /v1/sandboxes → the edge answers 200 from the app (held requests: the first byte as soon as the port answers). */
async function createToFirstByte(server: TestServer, template: string): Promise<{ id: string; ms: number }> {
  const spec = specs[template] as Spec;
  const started = performance.now();
  const created = await server.call('POST', '/v1/sandboxes', { template });
  if (created.status !== 201) throw new Error(`create ${template}: ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  const host = previewHostOf(id, spec.port);
  await waitFor(
    async () => ((await edgeGet(server, host)).status === 200 ? true : undefined),
    600_000,
    `${template} first byte`,
  );
  return { id, ms: performance.now() - started };
}

async function write(server: TestServer, id: string, path: string, content: string): Promise<void> {
  const res = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/octet-stream' },
    body: content,
  });
  if (res.status >= 300) throw new Error(`write ${path}: ${res.status}`);
}

async function read(server: TestServer, id: string, path: string): Promise<string> {
  return (await server.call('GET', `/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`))
    .body as string;
}

/** Polls the open page for `text` in #title, across reloads (the static live reload navigates). */
async function pageShows(page: Page, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const seen = await page
      .evaluate(`document.getElementById('title')?.textContent ?? null`)
      .catch(() => null);
    if (seen === text) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`the page never showed "${text}"`);
}

async function editLatencies(
  server: TestServer,
  browser: Browser,
  template: string,
  id: string,
): Promise<number[]> {
  const spec = specs[template] as Spec;
  const original = await read(server, id, spec.file);
  const host = previewHostOf(id, spec.port);
  const samples: number[] = [];
  let page: Page | undefined;
  if (spec.visible === 'browser') {
    page = await browser.newPage();
    const url = (await server.call('GET', `/v1/sandboxes/${id}`)).body.previews[0].url as string;
    await page.goto(url);
    await pageShows(page, spec.text, 120_000);
    await page.waitForTimeout(500); // HMR socket connected
  }
  for (let i = 1; i <= EDITS; i++) {
    const next = `${template} edit ${i}`;
    const content = original.replace(spec.text, next);
    const started = performance.now();
    await write(server, id, spec.file, content);
    try {
      if (page) await pageShows(page, next, 15_000);
      else
        await waitFor(
          async () => {
            const res = await edgeGet(server, host);
            return res.status === 200 && res.text.includes(next) ? true : undefined;
          },
          15_000,
          next,
        );
      samples.push(performance.now() - started);
    } catch {
      // Not visible within 15 s: counted as missed (the next edit carries on).
      process.stderr.write(`${template}: edit ${i} not visible within 15 s\n`);
    }
    await new Promise((r) => setTimeout(r, 300)); // let file watchers settle between edits
  }
  await page?.close();
  return samples;
}

async function main(): Promise<void> {
  const server = await startTestServer({ logLevel: 'silent' });
  const browser = await launchChromium();
  const rows: Record<string, string | number>[] = [];
  try {
    // The host's first sandbox also creates the network: not measured.
    const warmup = await createToFirstByte(server, 'static');
    await server.app.service.delete(warmup.id);
    for (const template of templates) {
      const spec = specs[template] as Spec;
      const cold = await createToFirstByte(server, template);
      process.stderr.write(`${template}: cold create → first byte ${(cold.ms / 1000).toFixed(2)} s\n`);
      const edits = await editLatencies(server, browser, template, cold.id);
      const node = ['vite-react', 'vite-vue', 'next', 'express'].includes(template);
      if (node) {
        await waitFor(
          async () => ((await server.app.service.templates.fresh(template as 'express')) ? true : undefined),
          120_000,
          `${template} cache`,
        );
      }
      await server.app.service.delete(cold.id);
      const warm = await createToFirstByte(server, template);
      process.stderr.write(`${template}: warm create → first byte ${(warm.ms / 1000).toFixed(2)} s\n`);
      await server.app.service.delete(warm.id);
      const s = summary(edits);
      rows.push({
        template,
        'cold create→byte s': cold.ms / 1000,
        'warm create→byte s': warm.ms / 1000,
        'create anchor': spec.anchorCreate ?? '',
        [`edit→visible p50 ms (n=${EDITS})`]: s.p50,
        'edit p95 ms': s.p95,
        'seen in': spec.visible === 'browser' ? 'browser' : 'HTTP',
        missed: EDITS - edits.length,
        'edit anchor': '≤ 300 ms',
      });
    }
  } finally {
    await browser.close();
    await server.close();
  }
  printTable('create → first preview byte (through the edge) and file write → change visible', rows);
}

if (PART === 'templates' || PART === 'all') await main();
if (PART === 'projects' || PART === 'all') {
  await projectsBench({
    projects: (opt('projects') ?? 'react,vue').split(','),
    rounds: Number(opt('rounds') ?? 3),
    poolSize: Number(opt('pool') ?? 2),
  });
}
