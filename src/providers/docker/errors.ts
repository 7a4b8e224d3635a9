import { PreviewdError } from '../../domain/errors.js';

interface EngineError {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
  message?: string;
}

export function engineStatus(err: unknown): number | undefined {
  return (err as EngineError | undefined)?.statusCode;
}

/** Turns an engine failure into a PreviewdError with a stable code. */
export function fromEngineError(err: unknown, action: string): PreviewdError {
  if (err instanceof PreviewdError) return err;
  const e = err as EngineError;
  const message = e?.json?.message ?? e?.message ?? String(err);
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOENT' || e?.code === 'EACCES') {
    return new PreviewdError(
      'engine_unavailable',
      `Docker engine unreachable while trying to ${action}: ${message}`,
      {
        cause: err,
      },
    );
  }
  if (e?.statusCode === 404 && /no such image/i.test(message)) {
    return new PreviewdError('image_not_found', message, { cause: err });
  }
  return new PreviewdError('engine_error', `${action}: ${message}`, { cause: err });
}
