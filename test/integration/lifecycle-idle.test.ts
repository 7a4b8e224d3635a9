import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppSandbox, edgeJson, previewHostOf, wsConnect, wsRoundTrip } from '../helpers/edge.js';
import { sleep, stateEvents, stateOf, waitStateEvent } from '../helpers/lifecycle.js';
import { startTestServer, type TestServer, waitFor } from '../helpers/server.js';

describe('idle in two tiers: pause, then stop; woken through the edge (real engine)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ 'lifecycle.idleReapIntervalSec': 0.5 });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('pauses after pauseAfterSec, wakes from paused, stops after idleTimeoutSec, wakes from stopped', async () => {
    const { id } = await createAppSandbox(server, { pauseAfterSec: 2, idleTimeoutSec: 6 });
    const host = previewHostOf(id);
    await waitStateEvent(server, id, 'paused', 'idle');
    expect(await stateOf(server, id)).toBe('paused');

    // Wake from the first tier: the request is answered by the app, the sandbox runs again.
    const fromPaused = await edgeJson(server, host, '/echo', { headers: { accept: 'application/json' } });
    expect(fromPaused.status).toBe(200);
    expect(fromPaused.body.url).toBe('/echo');
    expect(await stateOf(server, id)).toBe('running');

    // Left alone: paused again, then stopped (memory freed).
    await waitStateEvent(server, id, 'stopped', 'idle');
    const events = await stateEvents(server, id);
    const afterWake = events.slice(events.findIndex((e) => e.from === 'paused' && e.to === 'running') + 1);
    expect(afterWake.filter((e) => e.reason === 'idle').map((e) => e.to)).toEqual([
      'paused',
      'stopping',
      'stopped',
    ]);

    // Wake from the second tier: a stopped sandbox answers the first request, its files intact.
    const fromStopped = await edgeJson(server, host, '/echo', { method: 'POST', body: 'still here' });
    expect(fromStopped.status).toBe(200);
    expect(fromStopped.body.body).toBe('still here');
    expect(await stateOf(server, id)).toBe('running');
    await server.call('DELETE', `/v1/sandboxes/${id}`);
  });

  it('keeps awake: keepalive untilSec, always_on, an open WebSocket, a background process', async () => {
    // Each keeper is set up the moment its sandbox runs (well within pauseAfterSec).
    const idle = { pauseAfterSec: 3, idleTimeoutSec: 5 };
    let ws: Awaited<ReturnType<typeof wsConnect>>['ws'] | undefined;
    let pid = 0;
    const [kept, always, socket, busy] = await Promise.all([
      createAppSandbox(server, idle).then(async (sb) => {
        const held = await server.call('POST', `/v1/sandboxes/${sb.id}/keepalive`, { untilSec: 60 });
        expect(held.status).toBe(200);
        expect(Date.parse(held.body.keepAliveUntil)).toBeGreaterThan(Date.now() + 50_000);
        return sb;
      }),
      createAppSandbox(server, { ...idle, idlePolicy: 'always_on' }),
      createAppSandbox(server, idle).then(async (sb) => {
        const open = await wsConnect(server, previewHostOf(sb.id), '/ws');
        expect(JSON.parse(open.first).url).toBe('/ws');
        ws = open.ws;
        return sb;
      }),
      createAppSandbox(server, idle).then(async (sb) => {
        const proc = await server.call('POST', `/v1/sandboxes/${sb.id}/processes`, { cmd: 'sleep 30' });
        expect(proc.status).toBeLessThan(300);
        pid = proc.body.pid;
        return sb;
      }),
    ]);
    expect(always.body.idlePolicy).toBe('always_on');

    // Well past both tiers: every one of them still runs, none saw an idle transition.
    await sleep(6500);
    for (const sb of [kept, always, socket, busy]) {
      expect(await stateOf(server, sb.id)).toBe('running');
      expect((await stateEvents(server, sb.id)).some((e) => e.reason === 'idle')).toBe(false);
    }
    expect(await wsRoundTrip(ws!, 'still open')).toBe('still open');

    // Once the WebSocket closes and the process is killed, they sleep like the others.
    ws!.close();
    await server.call('POST', `/v1/sandboxes/${busy.id}/processes/${pid}/kill`, {});
    await waitStateEvent(server, socket.id, 'paused', 'idle');
    await waitStateEvent(server, busy.id, 'paused', 'idle');
    await Promise.all(
      [kept, always, socket, busy].map((sb) => server.call('DELETE', `/v1/sandboxes/${sb.id}`)),
    );
  });

  it('runs preStop (time-bounded) before an idle stop; an exec wakes what previewd put to sleep', async () => {
    const { id } = await createAppSandbox(server, {
      pauseAfterSec: 0,
      idleTimeoutSec: 2,
      preStop: { cmd: 'echo flushed > /workspace/prestop.txt; sleep 60', timeoutSec: 2 },
    });
    await waitStateEvent(server, id, 'stopped', 'idle');
    const file = join(server.dataDir, 'sandboxes', id, 'workspace', 'prestop.txt');
    await waitFor(async () => (existsSync(file) ? true : undefined), 5000, 'prestop.txt');
    expect(readFileSync(file, 'utf8')).toBe('flushed\n');
    // The sleep 60 was cut by the bound: the stop happened (checked above) without waiting a minute.

    // An exec on a sandbox previewd put to sleep wakes it (a client's own stop would answer 409).
    const exec = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: 'cat /workspace/prestop.txt' });
    expect(exec.status).toBe(200);
    expect(exec.body).toMatchObject({ exitCode: 0, stdout: 'flushed\n' });
    expect(await stateOf(server, id)).toBe('running');
    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const refused = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: 'true' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('sandbox_not_running');
    await server.call('DELETE', `/v1/sandboxes/${id}`);
  });
});
