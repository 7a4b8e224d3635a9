import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { planFromInput } from '../../src/runtimes/plan.js';
import { installStamp, templateFiles } from '../../src/runtimes/templates.js';
import { LayerBudget, snapshotLayersOf } from '../../src/workspaces/layer-budget.js';
import { LayerStore, layerKey } from '../../src/workspaces/layers.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');
const HOUR = 60 * 60_000;

/**
 * The package directories express needs, from this repository's own node_modules (no registry),
 * as paths under node_modules (nested copies kept where they are), resolved as Node does.
 */
function expressClosure(): string[] {
  const modules = join(root, 'node_modules');
  const seen = new Set<string>();
  const find = (name: string, from: string): string => {
    for (let dir = from; dir.startsWith(modules); dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
    }
    const top = join(modules, name);
    if (!existsSync(join(top, 'package.json'))) throw new Error(`${name} is not installed here`);
    return top;
  };
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(find(dep, dir));
  };
  visit(join(modules, 'express'));
  return [...seen].map((dir) => relative(modules, dir));
}

describe('layer store budget on the real engine', () => {
  let server: TestServer;
  const as = { 'x-previewd-owner': 'lena' };

  beforeAll(async () => {
    server = await startTestServer({ 'layers.budgetMb': 1 });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  }, 120_000);

  const createRunning = async (body: Record<string, unknown>) => {
    const res = await server.call('POST', '/v1/sandboxes', body, as);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await waitState(server, res.body.id, 'running', 120_000);
    return res.body.id as string;
  };

  it("keeps a snapshot's layer and a running sandbox's template layer under a 1 MB budget, evicts an unused one; doctor --json reports the store", async () => {
    // The express template's dependency layer, through previewd's own template build (TemplateCache
    // .build), from a build directory holding this repository's copy of express — the npm registry
    // is never asked, and the layer is what a warm-up would publish.
    const templates = server.app.service.templates;
    const files = await templateFiles('express');
    const plan = planFromInput({ template: 'express', files }, server.app.config);
    const build = await mkdtemp(join(tmpdir(), 'previewd-layer-budget-build-'));
    const workspace = join(build, 'workspace');
    await mkdir(join(workspace, 'node_modules'), { recursive: true });
    for (const rel of expressClosure()) {
      const target = join(workspace, 'node_modules', rel);
      // A nested package came along with the package it sits in (visited first).
      if (existsSync(target)) continue;
      await mkdir(dirname(target), { recursive: true });
      await run('cp', ['-a', join(root, 'node_modules', rel), target]);
    }
    await writeFile(
      join(workspace, 'node_modules', '.previewd-install-hash'),
      `${installStamp(plan.install!, files)}\n`,
    );
    await writeFile(
      join(workspace, 'package-lock.json'),
      JSON.stringify({ name: 'express-app', lockfileVersion: 3, packages: {} }),
    );
    templates.markBuild('layerbudgetbuild', 'express');
    expect(await templates.build('express', 'layerbudgetbuild', workspace)).toBe(true);
    templates.unmarkBuild('layerbudgetbuild');
    await rm(build, { recursive: true, force: true });
    const templateKey = readFileSync(
      join(server.dataDir, 'cache', 'templates', 'express', 'layer'),
      'utf8',
    ).trim();

    // A running sandbox on it: its stack names the template layer.
    const app = await createRunning({ template: 'express' });
    const stack = await (server.app.provider as DockerProvider).storage.readStack(app);
    expect(stack?.layers).toContain(templateKey);
    const served = await server.app.provider.exec(app, {
      cmd: ['sh', '-c', 'test -f /workspace/node_modules/express/package.json && echo yes'],
      timeoutSec: 30,
    });
    expect(served.stdout.toString().trim()).toBe('yes');

    // A snapshot of another sandbox, which is then deleted: only the snapshot row names its layer.
    const base = await createRunning({
      files: { 'index.html': '<h1>kept</h1>\n', 'big.bin': 'x'.repeat(1_500_000) },
    });
    const snap = await server.call('POST', `/v1/sandboxes/${base}/snapshots`, { name: 'kept' }, as);
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect((await server.call('DELETE', `/v1/sandboxes/${base}`, undefined, as)).status).toBeLessThan(300);
    const [row] = await server.app.store.listSnapshots();
    const snapKeys = row!.layers;
    expect(snapKeys.length).toBeGreaterThan(0);

    // A layer nothing names, published an hour ago (its clock), 2 MB.
    const unused = layerKey('test', 'unused', String(Date.now()));
    await new LayerStore(server.dataDir, () => Date.now() - HOUR).put(unused, async (dir) =>
      writeFile(join(dir, 'blob'), Buffer.alloc(2 * 1024 * 1024, 7)),
    );

    // One pass of the budget as the server runs it (its stacks, its snapshot rows), with no grace
    // window: the template and snapshot layers were published a moment ago.
    const layers = new LayerStore(server.dataDir);
    const pass = new LayerBudget({
      dataDir: server.dataDir,
      layers,
      sources: {
        storage: (server.app.provider as DockerProvider).storage,
        snapshotLayers: snapshotLayersOf(server.app.store, () => server.app.service.nodeId),
      },
      budgetMb: () => 1,
      graceMs: 0,
      log: pino({ level: 'silent' }),
    });
    const result = await pass.runOnce();
    // The server's own pass (after the publish) may have taken it already.
    expect(layers.has(unused)).toBe(false);
    expect(existsSync(join(server.dataDir, 'layers', unused))).toBe(false);
    expect(result.evicted).not.toContain(templateKey);
    for (const k of snapKeys) expect(result.evicted).not.toContain(k);
    expect(layers.has(templateKey)).toBe(true);
    for (const k of snapKeys) expect(layers.has(k)).toBe(true);
    // Still over: everything left is in use (reported, nothing else removed).
    expect(result.over).toBe(true);

    // The sandbox still reads its template's files, and a new sandbox from the snapshot starts.
    const again = await server.app.provider.exec(app, {
      cmd: ['sh', '-c', 'head -c 1 /workspace/node_modules/express/package.json'],
      timeoutSec: 30,
    });
    expect(again.stdout.toString()).toBe('{');
    const fromSnap = await createRunning({ snapshot: row!.id });
    const html = await server.app.provider.exec(fromSnap, {
      cmd: ['cat', '/workspace/index.html'],
      timeoutSec: 30,
    });
    expect(html.stdout.toString()).toContain('kept');

    // Metrics: the server's registry has both series (as of its last pass).
    await server.app.layerBudget.runOnce();
    const metrics = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    const text = await metrics.text();
    expect(text).toMatch(/previewd_layers_bytes\{kind="template"\} [1-9]/);
    expect(text).toContain('previewd_layers_evicted_total');

    // The doctor reads the same store: per kind, in use, over budget with the fix.
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PREVIEWD_')));
    const doctor = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'doctor', '--json'], {
      cwd: root,
      env: {
        ...clean,
        NO_COLOR: '1',
        PREVIEWD_URL: server.url,
        PREVIEWD_API_KEY: TEST_KEY,
        PREVIEWD_DATA_DIR: server.dataDir,
        PREVIEWD_API_ADDR: '127.0.0.1:0',
        PREVIEWD_EDGE_ADDR: '127.0.0.1:0',
        PREVIEWD_LAYERS_BUDGET_MB: '1',
      },
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: { stdout: string }) => ({ stdout: err.stdout }));
    const check = JSON.parse(doctor.stdout).checks.find((c: { check: string }) => c.check === 'layer store');
    expect(check.status, check.detail).toBe('warn');
    expect(check.detail).toMatch(/^over budget/);
    expect(check.fix).toMatch(/layers\.budgetMb/);
    expect(check.layers.budgetBytes).toBe(1024 * 1024);
    expect(check.layers.byKind.template.count).toBe(1);
    expect(check.layers.byKind.template.inUse).toBe(1);
    expect(check.layers.byKind.snapshot.count).toBeGreaterThanOrEqual(1);
    expect(check.layers.byKind.snapshot.inUse).toBe(check.layers.byKind.snapshot.count);
    expect(check.layers.totalBytes).toBeGreaterThan(1024 * 1024);
  }, 300_000);
});
