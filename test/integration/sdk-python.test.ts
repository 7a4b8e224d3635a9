import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_KEY, type TestServer } from '../helpers/server.js';

const root = join(import.meta.dirname, '..', '..');

/** Runs the Python SDK's unittest suite (packages/sdk-python/tests) against a real test server. */
describe('Python SDK against a real server and engine', () => {
  let server: TestServer;

  beforeAll(async () => {
    // Loopback webhook targets: test_webhooks.py's receiver listens on 127.0.0.1.
    // A pool of one Python container: test_pool.py reads its state (the node image stays unpooled).
    server = await startTestServer({
      'webhooks.allowPrivateTargets': true,
      pool: { 'previewd/runtime-python:3': 1 },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('passes its unittest suite', async () => {
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        'python3',
        ['-m', 'unittest', 'discover', '-v', '-s', 'packages/sdk-python/tests'],
        {
          cwd: root,
          env: {
            ...process.env,
            PYTHONPATH: join(root, 'packages/sdk-python/src'),
            PYTHONDONTWRITEBYTECODE: '1',
            PREVIEWD_URL: server.url,
            PREVIEWD_API_KEY: TEST_KEY,
            PREVIEWD_EDGE_URL: server.edgeUrl,
            PREVIEWD_TEST_POOL_IMAGE: server.app.config.images.python,
          },
          timeout: 300_000,
        },
        (err, stdout, stderr) => {
          const exit = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code: exit, output: `${stdout}${stderr}` });
        },
      );
    });
    expect(code, output).toBe(0);
    const ran = Number(/Ran (\d+) tests?/.exec(output)?.[1] ?? 0);
    expect(ran, output).toBeGreaterThanOrEqual(13);
    expect(output).toMatch(/\nOK\s*$/);
    expect(output).not.toMatch(/skipped|FAIL|ERROR/);
  }, 320_000);
});
