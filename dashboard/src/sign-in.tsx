import { useState } from 'preact/hooks';
import { ApiError, api } from './api-client';
import { ErrorNote } from './error-note';

/** The API key is sent once; the server answers with an HttpOnly cookie. Nothing is stored in the page. */
export function SignIn({
  onSignedIn,
}: {
  onSignedIn: (session: { owner: string | null; role?: 'admin' | 'tenant' }) => void;
}) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await api.signIn(key.trim());
      setKey('');
      onSignedIn(session);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="centered">
      <form class="card sign-in" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to previewd</h1>
        <p class="muted">
          Use one of the server's API keys (<code>PREVIEWD_API_KEYS</code>). It is exchanged for a session
          cookie; the page does not keep it.
        </p>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="apiKey"
          type="password"
          autocomplete="current-password"
          required
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        {error ? (
          <ErrorNote
            error={
              error instanceof ApiError && error.status === 401
                ? new ApiError(401, error.code, 'That API key was refused.', error.hint ?? error.message)
                : error
            }
          />
        ) : null}
        <button type="submit" class="primary" disabled={busy || !key.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
