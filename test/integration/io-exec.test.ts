import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

async function ndjson(server: TestServer, id: string, body: unknown): Promise<any[]> {
  const res = await fetch(`${server.url}/v1/sandboxes/${id}/exec`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TEST_KEY}`,
      'content-type': 'application/json',
      accept: 'application/x-ndjson',
    },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/x-ndjson');
  const text = await res.text();
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('exec and background processes over the API (real engine)', () => {
  let server: TestServer;
  let id: string;
  const exec = (body: unknown) => server.call('POST', `/v1/sandboxes/${id}/exec`, body);

  beforeAll(async () => {
    server = await startTestServer();
    const created = await server.call('POST', '/v1/sandboxes', { runtime: { start: 'exec sleep infinity' } });
    id = created.body.id;
    await waitState(server, id, 'running');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('runs a string through sh -c and an array as argv, in /workspace by default', async () => {
    const res = await exec({ cmd: 'echo "$((1+2))" && pwd && id -u' });
    expect(res.status).toBe(200);
    // As the sandbox's own uid.
    const { uid } = (await server.app.store.getSandbox(id))!.identity!;
    expect(res.body).toMatchObject({ exitCode: 0, stdout: `3\n/workspace\n${uid}\n`, stderr: '' });
    expect(typeof res.body.durationMs).toBe('number');
    const argv = await exec({ cmd: ['printf', '%s|', 'a b', '$HOME', ';ls'] });
    expect(argv.body.stdout).toBe('a b|$HOME|;ls|');
    const cwd = await exec({ cmd: 'mkdir -p sub/dir && cd sub && pwd' });
    expect(cwd.body.stdout).toBe('/workspace/sub\n');
    expect((await exec({ cmd: 'pwd', cwd: 'sub/dir' })).body.stdout).toBe('/workspace/sub/dir\n');
    expect((await exec({ cmd: 'pwd', cwd: '/tmp' })).body.stdout).toBe('/tmp\n');
    const noDir = await exec({ cmd: 'pwd', cwd: 'no/such/dir' });
    expect(noDir.status).toBe(400);
    expect(noDir.body.error.code).toBe('invalid_path');
    expect((await exec({ cmd: 'echo $A-$B', env: { A: '1', B: 'two' } })).body.stdout).toBe('1-two\n');
    expect((await exec({ cmd: 'wc -c; cat', stdin: 'hello' })).body.stdout).toBe('5\n');
    expect((await exec({ cmd: ['cat'], stdin: 'piped\nlines' })).body.stdout).toBe('piped\nlines');
  });

  it('treats a non-zero exit as a result, not an error', async () => {
    const res = await exec({ cmd: 'echo out; echo err >&2; exit 42' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ exitCode: 42, stdout: 'out\n', stderr: 'err\n' });
    const missing = await exec({ cmd: ['no-such-binary'] });
    expect(missing.status).toBe(200);
    // the engine answers 126 ("executable file not found") for argv whose binary is missing
    expect([126, 127]).toContain(missing.body.exitCode);
  });

  it('kills a command that runs past its timeout and answers exec_timeout with its output so far', async () => {
    const res = await exec({
      cmd: 'echo started; echo warn >&2; sleep 300 & sleep 301; echo never',
      timeoutSec: 1,
    });
    expect(res.status).toBe(408);
    expect(res.body.error.code).toBe('exec_timeout');
    expect(res.body.error.details).toMatchObject({ stdout: 'started\n', stderr: 'warn\n' });
    // the command and its children are gone
    const ps = await exec({ cmd: 'ps -eo args | grep "[s]leep 30" || true' });
    expect(ps.body.stdout).toBe('');
  });

  it('streams output as NDJSON in order, ending with the exit code', async () => {
    const lines = await ndjson(server, id, {
      cmd: 'for i in 1 2 3 4; do echo out-$i; sleep 0.05; echo err-$i >&2; sleep 0.05; done; exit 3',
    });
    const last = lines.pop();
    expect(last).toEqual({ exitCode: 3 });
    const order = lines.map((l) => `${l.stream}:${l.data}`).join('');
    expect(order).toBe(
      'stdout:out-1\nstderr:err-1\nstdout:out-2\nstderr:err-2\nstdout:out-3\nstderr:err-3\nstdout:out-4\nstderr:err-4\n',
    );
    const timed = await ndjson(server, id, { cmd: 'echo a; sleep 60', timeoutSec: 1 });
    expect(timed[0]).toEqual({ stream: 'stdout', data: 'a\n' });
    expect(timed.at(-1)).toMatchObject({ error: { code: 'exec_timeout' } });
  });

  it('runs an interactive session over a WebSocket: stdin, eof, exit code; and a PTY', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/sandboxes/${id}/exec/ws`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    const messages: any[] = [];
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    ws.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send(
      JSON.stringify({
        type: 'start',
        cmd: 'while read line; do echo "got:$line"; done; echo bye >&2; exit 5',
      }),
    );
    await waitFor(async () => (messages.some((m) => m.type === 'started') ? true : undefined));
    ws.send(JSON.stringify({ type: 'stdin', data: 'one\n' }));
    await waitFor(async () => (messages.some((m) => m.data === 'got:one\n') ? true : undefined));
    ws.send(Buffer.from('two\n'));
    ws.send(JSON.stringify({ type: 'eof' }));
    await closed;
    const out = messages
      .filter((m) => m.type === 'stdout')
      .map((m) => m.data)
      .join('');
    expect(out).toBe('got:one\ngot:two\n');
    expect(
      messages
        .filter((m) => m.type === 'stderr')
        .map((m) => m.data)
        .join(''),
    ).toBe('bye\n');
    expect(messages.at(-1)).toEqual({ type: 'exit', exitCode: 5 });

    // A PTY: the command sees a terminal of the asked size; resize and signals reach it. The key
    // comes as a subprotocol, as a browser would send it; the server answers with `previewd` only.
    const pty = new WebSocket(`${server.url.replace('http', 'ws')}/v1/sandboxes/${id}/exec/ws`, [
      'previewd',
      `previewd.key.${TEST_KEY}`,
    ]);
    pty.once('upgrade', (res) => expect(res.headers['sec-websocket-protocol']).toBe('previewd'));
    const ptyMsgs: any[] = [];
    const ptyClosed = new Promise<void>((resolve) => pty.on('close', () => resolve()));
    pty.on('message', (raw) => ptyMsgs.push(JSON.parse(raw.toString())));
    await new Promise((resolve) => pty.on('open', resolve));
    pty.send(
      JSON.stringify({
        type: 'start',
        // The traps first: the size printed below tells the test it may send WINCH and INT.
        cmd: 'trap "echo resized; stty size" WINCH; trap "echo interrupted; exit 9" INT; tty; stty size; while true; do sleep 0.1; done',
        tty: { cols: 100, rows: 30 },
      }),
    );
    const ptyText = () =>
      ptyMsgs
        .filter((m) => m.type === 'stdout')
        .map((m) => m.data)
        .join('');
    await waitFor(async () => (ptyText().includes('30 100') ? true : undefined));
    expect(ptyText()).toMatch(/\/dev\/pts\/\d+/);
    pty.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
    await waitFor(async () => (ptyText().includes('40 120') ? true : undefined));
    pty.send(JSON.stringify({ type: 'signal', signal: 'SIGINT' }));
    await ptyClosed;
    expect(ptyText()).toContain('interrupted');
    expect(ptyMsgs.at(-1)).toEqual({ type: 'exit', exitCode: 9 });

    // No key, no session.
    const anon = new WebSocket(`${server.url.replace('http', 'ws')}/v1/sandboxes/${id}/exec/ws`);
    const status = await new Promise<number>((resolve) => {
      anon.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      anon.on('error', () => resolve(-1));
    });
    expect(status).toBe(401);
  });

  it('runs background processes that outlive their client, with logs, exit code and kill', async () => {
    // Start it over a connection that is then torn down.
    const agent = new Agent();
    const started = await request(`${server.url}/v1/sandboxes/${id}/processes`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        cmd: 'for i in 1 2 3 4 5; do echo tick-$i; sleep 0.3; done; echo done >&2; exit 4',
      }),
    });
    expect(started.statusCode).toBe(201);
    const proc = (await started.body.json()) as any;
    expect(proc).toMatchObject({ running: true, cmd: ['sh', '-c', expect.stringContaining('tick')] });
    expect(proc.pid).toBeGreaterThan(1);
    // A follower that goes away early does not stop it either.
    const follower = await request(
      `${server.url}/v1/sandboxes/${id}/processes/${proc.pid}/logs?follow=true`,
      {
        dispatcher: agent,
        headers: { authorization: `Bearer ${TEST_KEY}` },
      },
    );
    for await (const chunk of follower.body) {
      if (chunk.toString().includes('tick-1')) break;
    }
    await agent.destroy();

    const list = await server.call('GET', `/v1/sandboxes/${id}/processes`);
    expect(list.body.processes.map((p: { pid: number }) => p.pid)).toContain(proc.pid);
    // pid is the real PID inside the sandbox
    const inside = await exec({ cmd: `cat /proc/${proc.pid}/cmdline | tr '\\0' ' '` });
    expect(inside.body.stdout).toContain('tick');

    // Follow from a new client until it ends.
    const res = await fetch(`${server.url}/v1/sandboxes/${id}/processes/${proc.pid}/logs?follow=true`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      lines
        .filter((l) => l.stream === 'stdout')
        .map((l) => l.data)
        .join(''),
    ).toBe('tick-1\ntick-2\ntick-3\ntick-4\ntick-5\n');
    expect(lines.at(-1)).toEqual({ exitCode: 4 });
    const done = await waitFor(async () => {
      const got = await server.call('GET', `/v1/sandboxes/${id}/processes/${proc.pid}`);
      return got.body.running === false ? got.body : undefined;
    });
    expect(done).toMatchObject({ exitCode: 4, running: false });
    const events = await server.app.bus.history({ sandboxId: id });
    const exit = events.find((e) => e.type === 'process.exit');
    expect(exit?.data).toMatchObject({
      pid: proc.pid,
      exitCode: 4,
      lastLines: expect.arrayContaining(['tick-5', 'done']),
    });

    // kill: TERM by default reaches the process and its children
    const sleeper = await server.call('POST', `/v1/sandboxes/${id}/processes`, {
      cmd: 'sleep 400 & sleep 401',
    });
    expect(sleeper.status).toBe(201);
    await server.call('POST', `/v1/sandboxes/${id}/processes/${sleeper.body.pid}/kill`, {});
    const killed = await waitFor(async () => {
      const got = await server.call('GET', `/v1/sandboxes/${id}/processes/${sleeper.body.pid}`);
      return got.body.running === false ? got.body : undefined;
    });
    expect(killed.exitCode).toBe(143);
    expect((await exec({ cmd: 'ps -eo args | grep "[s]leep 40" || true' })).body.stdout).toBe('');
    const unknown = await server.call('GET', `/v1/sandboxes/${id}/processes/999999`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('process_not_found');
  });

  it('unpauses a paused sandbox for exec, and answers 409 sandbox_not_running when stopped', async () => {
    expect((await server.call('POST', `/v1/sandboxes/${id}/pause`)).body.state).toBe('paused');
    const res = await exec({ cmd: 'echo awake' });
    expect(res.body.stdout).toBe('awake\n');
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('running');
    const moves = (await server.app.bus.history({ sandboxId: id }))
      .filter((e) => e.type === 'sandbox.state')
      .map((e) => `${(e.data as any).from}>${(e.data as any).to}`);
    expect(moves.slice(-2)).toEqual(['running>paused', 'paused>running']);

    await server.call('POST', `/v1/sandboxes/${id}/stop`);
    const stopped = await exec({ cmd: 'true' });
    expect(stopped.status).toBe(409);
    expect(stopped.body.error.code).toBe('sandbox_not_running');
    expect(stopped.body.error.hint).toContain(`/v1/sandboxes/${id}/start`);
    const proc = await server.call('POST', `/v1/sandboxes/${id}/processes`, { cmd: 'true' });
    expect(proc.status).toBe(409);
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('stopped');
  });
});
