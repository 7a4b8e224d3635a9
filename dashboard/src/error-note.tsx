import { ApiError } from './api-client';

/**
 * An error as the user should read it: what happened, the API's stable code (to look up or quote),
 * and the server's hint on what to do.
 */
export function ErrorNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof ApiError ? error.hint : undefined;
  const code = error instanceof ApiError && error.code !== 'http_error' ? error.code : undefined;
  return (
    <div class="error-note" role="alert">
      <strong>{message}</strong>
      {code ? (
        <code class="error-code" data-error-code={code}>
          {code}
        </code>
      ) : null}
      {hint ? <p>{hint}</p> : null}
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}
