import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { isPreviewdError, PreviewdError } from '../domain/errors.js';
import { sendError } from './pages.js';

/** Answers a failed preview request: its own code for a PreviewdError, `internal` (logged) otherwise. */
export function failRequest(log: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (isPreviewdError(err)) {
    sendError(req, res, err);
    return;
  }
  log.error({ err }, 'edge request failed');
  sendError(req, res, new PreviewdError('internal', (err as Error)?.message ?? String(err)));
}

/** Any error as a PreviewdError (`internal` for the unexpected). */
export function asPreviewdError(err: unknown): PreviewdError {
  return isPreviewdError(err) ? err : new PreviewdError('internal', (err as Error)?.message ?? String(err));
}

/** Refuses a WebSocket upgrade with the error's status and JSON body, then closes the socket. */
export function rejectUpgrade(socket: Duplex, err: PreviewdError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.toBody());
  const extra = Object.entries(err.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-previewd-error: ${err.code}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}
