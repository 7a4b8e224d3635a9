import { PreviewdError } from './error-base.js';
import { type ErrorCode, errorClasses, errorCodes } from './generated/error-codes.js';

export { PreviewdError } from './error-base.js';
export * from './generated/error-codes.js';

/** The server could not be reached (refused, reset, DNS, aborted by a timeout). */
export class ConnectionError extends PreviewdError<'connection_failed'> {}

/** A wait (waitUntil, waitForPort) ran out of time. */
export class WaitTimeoutError extends PreviewdError<'wait_timeout'> {}

/** An answer that is not previewd's error shape (a proxy in between, a wrong URL). */
export class UnexpectedResponseError extends PreviewdError<'unexpected_response'> {}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCodes, code);
}

/** `err` is a PreviewdError, optionally with this code. */
export function isPreviewdError<C extends ErrorCode>(err: unknown, code?: C): err is PreviewdError<C> {
  return err instanceof PreviewdError && (code === undefined || err.code === code);
}

/** The typed error for an error body `{ error: { code, message, hint, details } }`. */
export function errorFromBody(status: number, body: unknown, retryAfter?: string | null): PreviewdError {
  const error = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown; details?: unknown } })
    ?.error;
  const retryAfterSec = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  if (!error || typeof error.code !== 'string') {
    return new UnexpectedResponseError('unexpected_response', `unexpected answer (HTTP ${status})`, {
      status,
      details: body,
      retryAfterSec,
    });
  }
  const message = typeof error.message === 'string' ? error.message : error.code;
  const opts = {
    status,
    hint: typeof error.hint === 'string' ? error.hint : undefined,
    details: error.details,
    retryAfterSec,
  };
  if (isErrorCode(error.code)) {
    const Class = errorClasses[error.code] as new (
      code: string,
      message: string,
      o: typeof opts,
    ) => PreviewdError;
    return new Class(error.code, message, { ...opts, hint: opts.hint ?? errorCodes[error.code].hint });
  }
  return new PreviewdError(error.code, message, opts);
}
