import { useRef, useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import type { GitSource, Sandbox } from './types';

/** Bounds the page checks before sending (the server checks the same and more). */
const MAX_URL = 2048;
const MAX_REF = 256;
const MAX_DEPTH = 1000;

/**
 * Create from a Git repository: `POST /v1/sandboxes { source: { git } }`. previewd clones it on
 * the host (docs/sources.md). The token is a password field read only when the form is sent: it
 * is never kept in the component's state and the field is emptied once the request is done.
 */
export function GitCreateForm({
  visibility,
  onCreated,
}: {
  visibility: 'public' | 'private';
  onCreated: (s: Sandbox) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const tokenInput = useRef<HTMLInputElement>(null);

  // Uncontrolled inputs, read from the form when it is sent: the token is never in any state.
  const submit = async (e: Event) => {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    const field = (name: string) => String(form.get(name) ?? '').trim();
    setError(null);
    const git: GitSource = { url: field('url') };
    if (field('ref')) git.ref = field('ref');
    if (field('depth')) git.depth = Number(field('depth'));
    const token = String(form.get('token') ?? '');
    if (token) git.token = token;
    setBusy(true);
    try {
      onCreated(await api.createSandbox({ source: { git }, visibility }));
      formEl.reset();
    } catch (err) {
      setError(err);
    } finally {
      if (tokenInput.current) tokenInput.current.value = '';
      setBusy(false);
    }
  };

  return (
    <form class="create-git" onSubmit={submit} aria-label="Create from a Git repository">
      <label for="git-url">Git repository</label>
      <div class="row">
        <input
          id="git-url"
          name="url"
          type="url"
          required
          maxLength={MAX_URL}
          placeholder="https://git.example.com/team/app.git"
        />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Cloning…' : 'Clone'}
        </button>
      </div>
      <div class="git-options">
        <label>
          Ref
          <input id="git-ref" name="ref" type="text" maxLength={MAX_REF} placeholder="branch or tag" />
        </label>
        <label>
          Depth
          <input id="git-depth" name="depth" type="number" min={1} max={MAX_DEPTH} placeholder="1" />
        </label>
        <label>
          Token
          <input
            id="git-token"
            name="token"
            ref={tokenInput}
            type="password"
            autocomplete="off"
            maxLength={4096}
            placeholder="private repo"
          />
        </label>
      </div>
      <p class="muted small">
        Cloned by previewd on the host (no hooks run, no <code>.git</code> kept); the token is sent with this
        request only.
      </p>
      {error ? <ErrorNote error={error} /> : null}
    </form>
  );
}
