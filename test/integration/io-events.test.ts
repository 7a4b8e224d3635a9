import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

interface SseEvent {
  id?: string;
  event?: string;
  data: any;
}

/** A minimal SSE client over fetch: collects events until closed. */
async function openSse(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${TEST_KEY}`, accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let sep = buffer.indexOf('\n\n');
        while (sep !== -1) {
          const block = buffer.slice(0, sep);
          buffer = buffer.slice(sep + 2);
          sep = buffer.indexOf('\n\n');
          const event: Partial<SseEvent> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6));
          }
          if (event.data !== undefined) events.push(event as SseEvent);
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    res,
    events,
    comments,
    async close() {
      controller.abort();
      await reading;
    },
  };
}

async function waitEvent(server: TestServer, sandboxId: string, match: (e: any) => boolean, what: string) {
  return waitFor(async () => (await server.app.bus.history({ sandboxId })).find(match), 30_000, what);
}

describe('logs and events (real engine)', () => {
  let server: TestServer;
  let app: string;

  beforeAll(async () => {
    server = await startTestServer({ 'io.portScanIntervalMs': 300, 'io.filesDebounceMs': 100 });
    const created = await server.call('POST', '/v1/sandboxes', {
      runtime: {
        start: `sh -c 'echo booting; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done'`,
        port: 3000,
      },
    });
    app = created.body.id;
    await waitState(server, app, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it("serves the app's output as NDJSON or SSE, with tail and follow", async () => {
    await waitFor(async () => {
      const res = await server.call('GET', `/v1/sandboxes/${app}/logs`);
      return typeof res.body === 'string' && res.body.includes('tick-2') ? true : undefined;
    });
    const res = await fetch(`${server.url}/v1/sandboxes/${app}/logs`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ stream: 'stdout', data: 'booting\n' });
    const tail = await fetch(`${server.url}/v1/sandboxes/${app}/logs?tail=1`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    const tailLines = (await tail.text()).trim().split('\n');
    expect(tailLines).toHaveLength(1);
    expect(JSON.parse(tailLines[0]!).data).toMatch(/^tick-\d+\n$/);

    const sse = await openSse(`${server.url}/v1/sandboxes/${app}/logs?follow=true&tail=0`);
    expect(sse.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await waitFor(async () => (sse.events.length >= 2 ? true : undefined));
    await sse.close();
    const n = (e: SseEvent) => Number(/tick-(\d+)/.exec(e.data.data)?.[1]);
    expect(n(sse.events[1]!)).toBe(n(sse.events[0]!) + 1);
    expect(sse.events[0]!.event).toBe('stdout');
  });

  it('streams events over SSE with ids, and resumes after a disconnect with Last-Event-ID', async () => {
    const listeners = () => (server.app.bus as any).emitter.listenerCount('event') as number;
    const baseline = listeners();
    const first = await openSse(`${server.url}/v1/sandboxes/${app}/events?types=sandbox.state`);
    await waitFor(async () => (listeners() === baseline + 1 ? true : undefined));
    expect(first.res.status).toBe(200);
    await server.call('POST', `/v1/sandboxes/${app}/pause`);
    await waitFor(async () => (first.events.length >= 1 ? true : undefined));
    await first.close();
    // the subscription ends with the connection
    await waitFor(async () => (listeners() === baseline ? true : undefined));
    const seen = first.events[0]!;
    expect(seen.event).toBe('sandbox.state');
    expect(seen.data).toMatchObject({
      type: 'sandbox.state',
      sandboxId: app,
      data: { from: 'running', to: 'paused' },
    });
    expect(Number(seen.id)).toBe(seen.data.id);

    // While nobody listens: resume (paused → running) and an exec that writes a file.
    await server.call('POST', `/v1/sandboxes/${app}/start`);
    await server.call('POST', `/v1/sandboxes/${app}/exec`, { cmd: 'echo x > while-away.txt' });
    await waitEvent(server, app, (e) => e.type === 'files.changed', 'files.changed');

    const resumed = await openSse(`${server.url}/v1/sandboxes/${app}/events`, { 'last-event-id': seen.id! });
    const missed = (await server.app.bus.history({ sandboxId: app, afterId: Number(seen.id) })).map(
      (e) => e.id,
    );
    expect(missed.length).toBeGreaterThanOrEqual(2);
    await waitFor(async () => (resumed.events.length >= missed.length ? true : undefined));
    // then live events keep coming on the same stream
    await server.call('POST', `/v1/sandboxes/${app}/exec`, { cmd: 'echo y > live.txt' });
    await waitFor(async () =>
      resumed.events.some((e) => e.event === 'files.changed' && e.data.data.paths.includes('live.txt'))
        ? true
        : undefined,
    );
    await resumed.close();
    const ids = resumed.events.map((e) => Number(e.id));
    expect(ids.slice(0, missed.length)).toEqual(missed);
    expect(new Set(ids).size).toBe(ids.length); // no repeats
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(ids[0]).toBeGreaterThan(Number(seen.id));
    expect(resumed.events[0]!.data.data).toMatchObject({ from: 'paused', to: 'running' });

    // The global stream with the query form of resume sees the same events.
    const global = await openSse(`${server.url}/v1/events?lastEventId=${seen.id}&sandboxId=${app}`);
    await waitFor(async () => (global.events.length >= missed.length ? true : undefined));
    await global.close();
    expect(global.events.slice(0, missed.length).map((e) => Number(e.id))).toEqual(missed);
  });

  it('publishes files.changed for changes made inside the sandbox, debounced, paths listed', async () => {
    const before = (await server.app.bus.history({ sandboxId: app })).at(-1)?.id ?? 0;
    await server.call('POST', `/v1/sandboxes/${app}/exec`, {
      cmd: 'mkdir -p src/deep && echo a > src/deep/new.txt && echo b > short-lived.txt && rm short-lived.txt && mkdir -p node_modules/x && echo n > node_modules/x/i.js',
    });
    const event = await waitFor(async () => {
      const changed = (await server.app.bus.history({ sandboxId: app, afterId: before })).filter(
        (e) => e.type === 'files.changed',
      );
      const paths = changed.flatMap((e) => (e.data as any).paths as string[]);
      return paths.includes('src/deep/new.txt') ? { changed, paths } : undefined;
    });
    expect(event.paths).toEqual(
      expect.arrayContaining(['src', 'src/deep', 'src/deep/new.txt', 'short-lived.txt']),
    );
    expect(event.paths.some((p) => p.startsWith('node_modules/'))).toBe(false);
    expect(event.changed.length).toBeLessThanOrEqual(2); // debounced into one (or two) events
  });

  it('publishes port.open for a server started by exec (an undeclared port) and port.closed when it stops', async () => {
    const server4321 = await server.call('POST', `/v1/sandboxes/${app}/processes`, {
      cmd: ['node', '-e', "require('http').createServer((q, r) => r.end('ok')).listen(4321)"],
    });
    expect(server4321.status).toBe(201);
    const open = await waitEvent(
      server,
      app,
      (e) => e.type === 'port.open' && e.data.port === 4321,
      'port.open 4321',
    );
    expect(open.data).toEqual({ port: 4321, declared: false, loopback: false });

    const local = await server.call('POST', `/v1/sandboxes/${app}/processes`, {
      cmd: ['node', '-e', "require('http').createServer((q, r) => r.end('ok')).listen(3000, '127.0.0.1')"],
    });
    const loop = await waitEvent(
      server,
      app,
      (e) => e.type === 'port.open' && e.data.port === 3000,
      'port.open 3000',
    );
    expect(loop.data).toEqual({ port: 3000, declared: true, loopback: true });

    await server.call('POST', `/v1/sandboxes/${app}/processes/${server4321.body.pid}/kill`, {});
    const closed = await waitEvent(
      server,
      app,
      (e) => e.type === 'port.closed' && e.data.port === 4321,
      'port.closed 4321',
    );
    expect(closed.data).toEqual({ port: 4321, declared: false });
    await server.call('POST', `/v1/sandboxes/${app}/processes/${local.body.pid}/kill`, {});

    // A server daemonized by a plain exec, the way an agent often starts one.
    const daemon = await server.call('POST', `/v1/sandboxes/${app}/exec`, {
      cmd: `nohup node -e "require('http').createServer((q, r) => r.end('ok')).listen(4555)" >/dev/null 2>&1 &`,
    });
    expect(daemon.body.exitCode).toBe(0);
    const viaExec = await waitEvent(
      server,
      app,
      (e) => e.type === 'port.open' && e.data.port === 4555,
      'port.open 4555',
    );
    expect(viaExec.data).toEqual({ port: 4555, declared: false, loopback: false });
  });

  it('publishes app.crashed with the exit code and last log lines when the dev server exits', async () => {
    const created = await server.call('POST', '/v1/sandboxes', {
      runtime: {
        start: `sh -c 'echo starting dev server; sleep 2; echo "Error: boom" >&2; exit 3'`,
        port: 3000,
      },
    });
    const id = created.body.id;
    const sse = await openSse(`${server.url}/v1/sandboxes/${id}/events?types=app.crashed`);
    const crash = await waitFor(async () => sse.events[0], 30_000, 'app.crashed');
    await sse.close();
    expect(crash.event).toBe('app.crashed');
    expect(crash.data.data).toMatchObject({ exitCode: 3, oomKilled: false });
    expect(crash.data.data.lastLines).toEqual(['starting dev server', 'Error: boom']);
    // The container stays up: the supervisor restarts the app with backoff (test/integration/app-supervisor.test.ts).
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
    // a stop by the API is not a crash
    await server.call('POST', `/v1/sandboxes/${app}/stop`);
    const appEvents = await server.app.bus.history({ sandboxId: app });
    expect(appEvents.some((e) => e.type === 'app.crashed')).toBe(false);
  });
});
