import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEventsFor } from '../helpers/event-stream.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

/** Renames files back and forth in a watched folder as fast as it can, for a bounded time. */
const churn = `
const fs = require('fs');
fs.mkdirSync('/workspace/churn', { recursive: true });
for (let i = 0; i < 50; i++) fs.writeFileSync('/workspace/churn/f' + i, '');
const end = Date.now() + 6000;
let n = 0;
while (Date.now() < end) {
  for (let i = 0; i < 50; i++) {
    fs.renameSync('/workspace/churn/f' + i, '/workspace/churn/g' + i);
    fs.renameSync('/workspace/churn/g' + i, '/workspace/churn/f' + i);
  }
  n += 100;
}
console.log(n);
`;

describe('a sandbox flooding the file watcher does not stall previewd (real engine)', () => {
  let server: TestServer;
  let id: string;
  beforeAll(async () => {
    server = await startTestServer();
    const created = await server.call('POST', '/v1/sandboxes', {
      files: { 'churn.js': churn, 'hello.txt': 'hi' },
      runtime: { start: 'exec sleep infinity' },
    });
    id = created.body.id;
    await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keeps /readyz and the files API answering while renames pour in, and still reports changes after', async () => {
    const run = server.call('POST', `/v1/sandboxes/${id}/exec`, {
      cmd: 'node /workspace/churn.js',
      timeoutSec: 30,
    });
    // The server runs in this process: a stalled event loop shows as time between polls, so the
    // whole round (requests and the 100 ms pause) is what is measured.
    let longest = 0;
    let polls = 0;
    const until = Date.now() + 6_000;
    // Made while the renames pour in (the watches may be closed by then): still reported after.
    const after = Date.now();
    const during = setTimeout(
      () =>
        void server.call('POST', `/v1/sandboxes/${id}/exec`, {
          cmd: 'mkdir -p /workspace/later && echo x > /workspace/later/new.txt',
        }),
      3_000,
    );
    while (Date.now() < until) {
      const t0 = performance.now();
      const [ready, read] = await Promise.all([
        fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(10_000) }),
        server.call('GET', `/v1/sandboxes/${id}/files?path=hello.txt`),
      ]);
      polls++;
      expect(ready.status).toBe(200);
      expect(read.body).toBe('hi');
      await new Promise((r) => setTimeout(r, 100));
      longest = Math.max(longest, performance.now() - t0 - 100);
    }
    const renames = Number((await run).body.stdout.trim());
    console.log(
      `watch flood: ${renames} renames in 6 s; ${polls} polls, longest /readyz + file read ${Math.round(longest)} ms`,
    );
    expect(renames).toBeGreaterThan(10_000);
    // A generous bound: it checks that nothing blocks, it is not a benchmark.
    expect(longest).toBeLessThan(1_500);

    // The watch still works: the directory made during the flood and its file are reported.
    clearTimeout(during);
    let seen: string[] = [];
    const deadline = Date.now() + 15_000;
    while (!seen.some((p) => p.startsWith('later')) && Date.now() < deadline) {
      seen = (await readEventsFor(`${server.url}/v1/sandboxes/${id}/events?lastEventId=0`, TEST_KEY, 800))
        .filter((e) => e.type === 'files.changed' && Date.parse(e.at) >= after - 1_000)
        .flatMap((e) => e.data.paths as string[]);
    }
    expect(seen.some((p) => p.startsWith('later'))).toBe(true);
  });
});
