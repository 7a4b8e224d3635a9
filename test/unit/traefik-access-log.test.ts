import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PreviewHostParser } from '../../src/edge/preview-host.js';
import {
  type AccessLogEntry,
  AccessLogTailer,
  parseAccessLogLine,
} from '../../src/traefik/access-log-tailer.js';
import { accessLogActivity } from '../../src/traefik/activity.js';

const ID = '01jf8z6v7k3q2m9x4r5t6y7w8a';

/** One line as Traefik writes it with `accessLog.format: json` (fields trimmed to the usual ones). */
function line(host: string, path = '/', status = 200): string {
  return `${JSON.stringify({
    ClientHost: '203.0.113.7',
    DownstreamStatus: status,
    Duration: 1234567,
    RequestHost: host,
    RequestMethod: 'GET',
    RequestPath: path,
    RequestProtocol: 'HTTP/1.1',
    RouterName: `${ID}-3000@docker`,
    StartUTC: '2026-11-24T02:00:00.123456789Z',
    entryPointName: 'web',
    level: 'info',
    msg: '',
    time: '2026-11-24T02:00:00Z',
  })}\n`;
}

describe('Traefik access-log tailer', () => {
  let dir: string;
  let log: string;
  let state: string;
  let seen: AccessLogEntry[];
  let tailer: AccessLogTailer;
  let batches: number;

  function newTailer(): AccessLogTailer {
    return new AccessLogTailer({
      path: log,
      stateFile: state,
      onEntry: (e) => seen.push(e),
      onBatch: () => {
        batches += 1;
      },
    });
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'previewd-accesslog-'));
    log = join(dir, 'access.log');
    state = join(dir, 'data', 'traefik-access-log.position.json');
    seen = [];
    batches = 0;
    tailer = newTailer();
  });
  afterEach(async () => {
    await tailer.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses Traefik JSON lines and ignores anything else', () => {
    expect(parseAccessLogLine(line('3000-X.preview.localhost'))).toMatchObject({
      host: '3000-X.preview.localhost',
      status: 200,
      router: `${ID}-3000@docker`,
      at: new Date('2026-11-24T02:00:00.123Z'),
    });
    expect(parseAccessLogLine('203.0.113.7 - - [24/Nov/2026] "GET / HTTP/1.1" 200')).toBeUndefined();
    expect(parseAccessLogLine('{"broken":')).toBeUndefined();
    expect(parseAccessLogLine('{"RequestPath":"/"}')).toBeUndefined();
  });

  it('starts at the end of an existing log, then reads new complete lines only', async () => {
    writeFileSync(log, line('old.preview.localhost'));
    await tailer.pollOnce();
    expect(seen).toEqual([]);
    const full = line('a.preview.localhost');
    appendFileSync(log, full.slice(0, 40)); // half a line: not yet
    await tailer.pollOnce();
    expect(seen).toEqual([]);
    appendFileSync(log, full.slice(40) + line('b.preview.localhost'));
    await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual(['a.preview.localhost', 'b.preview.localhost']);
    expect(batches).toBe(1);
  });

  it('follows rename + recreate: finishes the old file, then reads the new one from its start', async () => {
    writeFileSync(log, '');
    await tailer.pollOnce();
    appendFileSync(log, line('1.preview.localhost'));
    await tailer.pollOnce();
    appendFileSync(log, line('2.preview.localhost')); // written after the last poll, before rotation
    renameSync(log, `${log}.1`);
    writeFileSync(log, line('3.preview.localhost'));
    await tailer.pollOnce();
    appendFileSync(log, line('4.preview.localhost'));
    await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual([
      '1.preview.localhost',
      '2.preview.localhost',
      '3.preview.localhost',
      '4.preview.localhost',
    ]);
  });

  it('restarts at 0 after truncation in place (copytruncate)', async () => {
    writeFileSync(log, '');
    await tailer.pollOnce();
    appendFileSync(log, line('1.preview.localhost') + line('2.preview.localhost'));
    await tailer.pollOnce();
    truncateSync(log, 0);
    appendFileSync(log, line('3.preview.localhost'));
    await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual([
      '1.preview.localhost',
      '2.preview.localhost',
      '3.preview.localhost',
    ]);
  });

  it('keeps its position across restarts, and reads a file rotated meanwhile from its start', async () => {
    writeFileSync(log, '');
    await tailer.pollOnce();
    appendFileSync(log, line('1.preview.localhost'));
    await tailer.pollOnce();
    await tailer.stop();
    const saved = JSON.parse(readFileSync(state, 'utf8'));
    expect(saved.offset).toBe(Buffer.byteLength(line('1.preview.localhost')));

    appendFileSync(log, line('2.preview.localhost')); // while previewd was down
    tailer = newTailer();
    await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual(['1.preview.localhost', '2.preview.localhost']);
    await tailer.stop();

    renameSync(log, `${log}.1`); // rotated while down: the new file is all new
    writeFileSync(log, line('3.preview.localhost'));
    tailer = newTailer();
    await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual([
      '1.preview.localhost',
      '2.preview.localhost',
      '3.preview.localhost',
    ]);
  });

  it('reads a backlog over several polls, finishing the old file before following a rotation', async () => {
    await tailer.stop();
    writeFileSync(log, '');
    tailer = new AccessLogTailer({
      path: log,
      stateFile: state,
      onEntry: (e) => seen.push(e),
      chunkBytes: 256,
      maxBytesPerStep: 512,
    });
    await tailer.pollOnce();
    for (let i = 0; i < 10; i++) appendFileSync(log, line(`${i}.preview.localhost`));
    renameSync(log, `${log}.1`);
    writeFileSync(log, line('new.preview.localhost'));
    await tailer.pollOnce();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(10);
    for (let i = 0; i < 20; i++) await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `${i}.preview.localhost`),
      'new.preview.localhost',
    ]);
  });

  it('skips an endless line instead of buffering it', async () => {
    writeFileSync(log, '');
    await tailer.pollOnce();
    appendFileSync(log, `${'x'.repeat(3 * 1024 * 1024)}\n${line('after.preview.localhost')}`);
    await tailer.pollOnce();
    await tailer.pollOnce();
    expect(seen.map((e) => e.host)).toEqual(['after.preview.localhost']);
  });

  it('waits for a log that does not exist yet', async () => {
    await tailer.pollOnce();
    writeFileSync(log, line('1.preview.localhost'));
    await tailer.pollOnce(); // a file created after the start is read from its start
    expect(seen.map((e) => e.host)).toEqual(['1.preview.localhost']);
  });

  it('matches host ids case-insensitively through the edge host parser', () => {
    const touched: Array<[string, number]> = [];
    const onEntry = accessLogActivity(
      new PreviewHostParser({ previewDomain: 'preview.localhost', edge: { hostTemplate: '{port}-{id}' } }),
      (id, port) => touched.push([id, port]),
    );
    for (const host of [
      `3000-${ID.toUpperCase()}.preview.localhost`,
      `5173-${ID}.PREVIEW.LOCALHOST:8080`,
      'other.example.com',
      `3000-${ID}.preview.localhost.evil.test`,
    ]) {
      onEntry({ host, at: new Date() });
    }
    expect(touched).toEqual([
      [ID, 3000],
      [ID, 5173],
    ]);
  });
});
