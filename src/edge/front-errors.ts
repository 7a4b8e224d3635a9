import { STATUS_CODES } from 'node:http';
import { type ErrorCode, PreviewdError } from '../domain/errors.js';

/**
 * HAProxy's own answers (a request it cannot parse, a timeout, no server) in the edge's error
 * shape, `{"error":{code,message,hint}}` with `x-previewd-error`, instead of its HTML pages. Each
 * is a whole HTTP response, as HAProxy's `errorfile` wants it.
 */
const answers: Record<number, { code: ErrorCode; message: string }> = {
  400: { code: 'bad_request', message: 'the request is not valid HTTP (request line, headers or framing)' },
  408: { code: 'request_timeout', message: 'the request was not received in time' },
  500: { code: 'internal', message: 'the edge front failed on this request' },
  502: { code: 'upstream_error', message: 'the app answered badly or closed the connection' },
  503: { code: 'upstream_error', message: 'no server is available for this preview' },
  504: { code: 'upstream_error', message: 'the app did not answer in time' },
};

export function frontErrorResponses(): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [status, { code, message }] of Object.entries(answers)) {
    const body = JSON.stringify(new PreviewdError(code, message).toBody());
    out[Number(status)] =
      `HTTP/1.1 ${status} ${STATUS_CODES[Number(status)]}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-previewd-error: ${code}\r\n` +
      'cache-control: no-store\r\n' +
      'connection: close\r\n\r\n' +
      body;
  }
  return out;
}

/**
 * The answer to a Host no preview can have (longer than a DNS name): the built-in edge's 404. No
 * single quote in it (it goes into a single-quoted HAProxy string; JSON's \u0027 stands in).
 */
export function longHostBody(): string {
  return JSON.stringify(
    new PreviewdError('not_a_preview_host', 'the Host header is longer than a DNS name can be').toBody(),
  ).replaceAll("'", '\\u0027');
}
