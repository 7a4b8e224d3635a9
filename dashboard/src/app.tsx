import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, setUnauthorizedHandler } from './api-client';
import { ErrorNote } from './error-note';
import { ListView } from './list-view';
import { linkClick, useRoute } from './router';
import type { SandboxView as SandboxViewType } from './sandbox-view';
import { SignIn } from './sign-in';
import { SnapshotsView } from './snapshots-view';

type Session =
  | { status: 'checking' }
  | { status: 'signed-out' }
  | { status: 'signed-in'; owner: string | null; admin: boolean };

/** An admin key (older servers say no role: an admin's session is the one without an owner). */
const isAdmin = (s: { owner: string | null; role?: 'admin' | 'tenant' }) =>
  s.role ? s.role === 'admin' : !s.owner;

/** The shell: asks the server whether the session cookie is valid, then shows sign-in or the pages. */
export function App() {
  const [session, setSession] = useState<Session>({ status: 'checking' });
  const route = useRoute();
  // The sandbox page (CodeMirror, xterm.js) is loaded when first opened: the list stays light.
  const [SandboxView, setSandboxView] = useState<typeof SandboxViewType | null>(null);
  const [pageError, setPageError] = useState<unknown>(null);
  useEffect(() => {
    if (route.name !== 'sandbox' || SandboxView) return;
    import('./sandbox-view').then((m) => setSandboxView(() => m.SandboxView)).catch(setPageError);
  }, [route.name, SandboxView]);

  useEffect(() => {
    setUnauthorizedHandler(() => setSession({ status: 'signed-out' }));
    api
      .session()
      .then((s) => setSession({ status: 'signed-in', owner: s.owner, admin: isAdmin(s) }))
      .catch(() => setSession({ status: 'signed-out' }));
  }, []);

  const signOut = useCallback(async () => {
    await api.signOut().catch(() => undefined);
    setSession({ status: 'signed-out' });
  }, []);

  if (session.status === 'checking') {
    return (
      <main class="centered" aria-busy="true">
        <p class="muted">Loading…</p>
      </main>
    );
  }
  if (session.status === 'signed-out') {
    return (
      <SignIn onSignedIn={(s) => setSession({ status: 'signed-in', owner: s.owner, admin: isAdmin(s) })} />
    );
  }
  return (
    <div class="shell">
      <header class="topbar">
        <a href="/" class="brand" onClick={linkClick('/')}>
          previewd
        </a>
        <nav aria-label="Main">
          <a href="/" onClick={linkClick('/')} aria-current={route.name === 'list' ? 'page' : undefined}>
            Sandboxes
          </a>
          <a
            href="/snapshots"
            onClick={linkClick('/snapshots')}
            aria-current={route.name === 'snapshots' ? 'page' : undefined}
          >
            Snapshots
          </a>
        </nav>
        <span class="spacer" />
        {session.owner ? <span class="muted">Signed in as {session.owner}</span> : null}
        <button type="button" class="ghost" onClick={signOut}>
          Sign out
        </button>
      </header>
      {route.name === 'list' ? (
        <ListView admin={session.admin} />
      ) : route.name === 'snapshots' ? (
        <SnapshotsView />
      ) : SandboxView ? (
        <SandboxView key={route.id} id={route.id} />
      ) : (
        <main class="page">
          {pageError ? (
            <ErrorNote error={pageError} onRetry={() => location.reload()} />
          ) : (
            <p class="muted">Loading…</p>
          )}
        </main>
      )}
    </div>
  );
}
