/** The base of every error the SDK throws; one subclass per server error code (generated). */
export class PreviewdError<C extends string = string> extends Error {
  /** The server's stable error code (see errorCodes), or a client-side code. */
  readonly code: C;
  /** HTTP status (0 when the server was not reached). */
  readonly status: number;
  /** What to do about it. */
  readonly hint?: string;
  readonly details?: unknown;
  /** Seconds the server asked to wait before retrying (Retry-After), when it said. */
  readonly retryAfterSec?: number;

  constructor(
    code: C,
    message: string,
    opts: { status?: number; hint?: string; details?: unknown; retryAfterSec?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.status = opts.status ?? 0;
    this.hint = opts.hint;
    this.details = opts.details;
    this.retryAfterSec = opts.retryAfterSec;
  }
}
