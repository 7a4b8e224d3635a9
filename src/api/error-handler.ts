import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { type ErrorCode, PreviewdError } from '../domain/errors.js';

const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
  FST_ERR_BAD_URL: 'invalid_request',
};

/** Turns anything thrown in a handler into a PreviewdError with a stable code. */
export function toPreviewdError(err: unknown): PreviewdError {
  if (err instanceof PreviewdError) return err;
  const fe = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(fe)) {
    const context = fe.validationContext ?? 'request';
    if (context === 'params' && fe.validation.every((v) => v.instancePath === '/id')) {
      return new PreviewdError('invalid_id', 'the sandbox id in the path is not a 26-character ULID');
    }
    const problems = fe.validation.map((v) => {
      const path = v.instancePath.replace(/^\/$/, '');
      const where = path ? `${context}${path.replaceAll('/', '.')}` : context;
      return `${where}: ${v.message}`;
    });
    return new PreviewdError('invalid_request', problems.join('; '), {
      details: {
        issues: fe.validation.map((v) => ({ path: `${context}${v.instancePath}`, message: v.message })),
      },
    });
  }
  if (fe?.code && fastifyCodes[fe.code])
    return new PreviewdError(fastifyCodes[fe.code]!, fe.message, { cause: err });
  if (err instanceof SyntaxError && (fe as { statusCode?: number }).statusCode === 400) {
    return new PreviewdError('invalid_json', `body is not valid JSON: ${err.message}`, { cause: err });
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new PreviewdError('invalid_request', fe.message, { cause: err });
  }
  return new PreviewdError('internal', 'internal error', { cause: err });
}

/**
 * Fastify's own refusals before routing (a URL that does not percent-decode, e.g. `%ff`): the
 * usual error body instead of Fastify's. Passed as the `frameworkErrors` option.
 */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const perr = toPreviewdError(err);
  // A refused upgrade must not leave its socket open (no hook runs for these).
  if (request.headers.upgrade) reply.header('connection', 'close');
  void reply.status(perr.status).send(perr.toBody());
}

/** A path no route serves: `not_found` in the usual error body. */
export function answerNotFound(request: FastifyRequest, reply: FastifyReply): void {
  const perr = new PreviewdError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`);
  void reply.status(perr.status).send(perr.toBody());
}

/**
 * The one mapping from errors to HTTP: `{ "error": { code, message, hint } }` with the code's
 * status. Unknown paths answer `not_found` unless the dashboard is served (it installs its own).
 */
export function installErrorHandling(app: FastifyInstance, opts: { notFound?: boolean } = {}): void {
  app.setErrorHandler((err, request, reply) => {
    const perr = toPreviewdError(err);
    if (perr.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.debug({ code: perr.code }, perr.message);
    // A download whose stream failed before its first byte: the answer is the error, not the file.
    for (const name of ['content-type', 'content-length', 'content-disposition']) reply.removeHeader(name);
    for (const [name, value] of Object.entries(perr.headers ?? {})) reply.header(name, value);
    void reply.status(perr.status).send(perr.toBody());
  });
  if (opts.notFound !== false) app.setNotFoundHandler(answerNotFound);
}
