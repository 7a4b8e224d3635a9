import { describe, expect, it } from 'vitest';
import {
  errorFromBody,
  FileNotFoundError,
  PreviewdError,
  UnexpectedResponseError,
} from '../../packages/sdk/src/errors.js';
import { readLines, readNdjson, readSse } from '../../packages/sdk/src/streams.js';
import { exitCodeOf, exitCodes, table } from '../../src/cli/output.js';

/** A byte stream cut at the given places (to prove lines and UTF-8 survive any chunking). */
function chunked(text: string, cuts: number[]): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const edges = [0, ...cuts, bytes.length];
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < edges.length - 1; i++) controller.enqueue(bytes.slice(edges[i], edges[i + 1]));
      controller.close();
    },
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of it) out.push(item);
  return out;
}

describe('SDK stream readers', () => {
  it('lines across chunk edges, CRLF, a multi-byte character cut in two, a last unterminated line', async () => {
    const text = 'one\r\ntwo é\nthree';
    const cut = new TextEncoder().encode('one\r\ntwo ').length + 1; // inside "é"
    expect(await collect(readLines(chunked(text, [2, cut])))).toEqual(['one', 'two é', 'three']);
  });

  it('NDJSON skips blank lines', async () => {
    expect(await collect(readNdjson(chunked('{"a":1}\n\n{"b":2}\n', [3])))).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('SSE: id, event, multi-line data, comments and retry ignored', async () => {
    const text =
      'retry: 2000\n\n: keep-alive\n\nid: 7\nevent: port.open\ndata: {"a":\ndata: 1}\n\ndata: x\n\n';
    expect(await collect(readSse(chunked(text, [5, 30])))).toEqual([
      { id: '7', event: 'port.open', data: '{"a":\n1}' },
      { id: '7', event: 'message', data: 'x' },
    ]);
  });
});

describe('SDK errors and CLI exit codes', () => {
  it('maps an error body to the class of its code, with the table hint when none is sent', () => {
    const err = errorFromBody(404, { error: { code: 'file_not_found', message: 'no' } }, '3');
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err).toMatchObject({ code: 'file_not_found', status: 404, retryAfterSec: 3 });
    expect(err.hint).toMatch(/files\/list/);
    expect(errorFromBody(502, '<html>')).toBeInstanceOf(UnexpectedResponseError);
    const unknown = errorFromBody(418, { error: { code: 'teapot', message: 'short and stout' } });
    expect(unknown.constructor).toBe(PreviewdError);
  });

  it.each([
    ['sandbox_not_found', 404, exitCodes.notFound],
    ['sandbox_not_running', 409, exitCodes.conflict],
    ['unauthorized', 401, exitCodes.auth],
    ['connection_failed', 0, exitCodes.unavailable],
    ['exec_timeout', 408, exitCodes.timeout],
    ['invalid_path', 400, exitCodes.usage],
    ['engine_error', 502, exitCodes.failure],
  ])('%s → exit %s', (code, status, exit) => {
    expect(exitCodeOf(new PreviewdError(code, 'x', { status }))).toBe(exit);
  });

  it('tables align on the visible width (colour codes do not count)', () => {
    expect(
      table(
        ['A', 'B'],
        [
          ['\x1b[32mok\x1b[39m', 'x'],
          ['long', 'y'],
        ],
      ),
    ).toBe('A     B\n\x1b[32mok\x1b[39m    x\nlong  y');
  });
});
