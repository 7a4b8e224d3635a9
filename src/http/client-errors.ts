import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ErrorCode, PreviewdError } from '../domain/errors.js';

/**
 * Node's HTTP parser's refusals (a request it cannot read: bad request line, header bytes, framing,
 * headers past maxHeaderSize) answered with the usual `{error:{code,message,hint}}` body, for the
 * API and the built-in edge alike: `headers_too_large` (431), `request_timeout` (408), else
 * `bad_request` (400). The connection is closed afterwards; a reset one is only destroyed.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'request_timeout'
        : 'bad_request';
  const perr = new PreviewdError(code, describe(code, err));
  const body = JSON.stringify(perr.toBody());
  // What the client still sends is read and dropped until it closes (closing with unread bytes
  // would reset the connection, and the client might lose the answer); bounded in time.
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  (socket as Socket).setTimeout?.(5000, () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${perr.status} ${STATUS_CODES[perr.status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-previewd-error: ${code}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

function describe(code: ErrorCode, err: Error & { code?: string }): string {
  if (code === 'headers_too_large') return 'the request headers are too large';
  if (code === 'request_timeout') return 'the request was not received in time';
  // The parser's own reason (e.g. "Invalid header value char"), never the bytes it choked on.
  return `the request is not valid HTTP: ${err.code ?? 'parse error'}${err.message ? ` (${err.message.slice(0, 120)})` : ''}`;
}
