import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import { linkClick, navigate } from './router';
import { ago, useNow } from './time-format';
import type { Snapshot } from './types';

/**
 * The snapshots page (`/snapshots`): the caller's snapshots, newest first (`GET /v1/snapshots`),
 * a sandbox from one (`POST /v1/sandboxes { snapshot }`, then its page), and delete (confirmed).
 * Loaded on open and after each change; snapshots have no events of their own.
 */
export function SnapshotsView() {
  const now = useNow();
  const [snapshots, setSnapshots] = useState<Snapshot[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(() => {
    api
      .listSnapshots()
      .then((list) => {
        setSnapshots(list);
        setLoadError(null);
      })
      .catch(setLoadError);
  }, []);
  useEffect(load, [load]);

  const act = async (id: string, fn: () => Promise<void>) => {
    setBusy(id);
    setActionError(null);
    try {
      await fn();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(null);
    }
  };

  const createFrom = (snap: Snapshot) =>
    act(snap.id, async () => {
      const sandbox = await api.createSandbox({ snapshot: snap.id });
      navigate(`/sandboxes/${sandbox.id}`);
    });

  const remove = (snap: Snapshot) => {
    const label = snap.name ? `"${snap.name}" (${snap.id})` : snap.id;
    if (!confirm(`Delete snapshot ${label}? Sandboxes made from it keep their files.`)) return;
    void act(snap.id, async () => {
      await api.deleteSnapshot(snap.id);
      setSnapshots((list) => list?.filter((s) => s.id !== snap.id) ?? null);
    });
  };

  return (
    <main class="page snapshots-page">
      <section class="card" aria-labelledby="snapshots-title">
        <div class="section-head">
          <h2 id="snapshots-title">Snapshots</h2>
          <button type="button" class="ghost" onClick={load}>
            Refresh
          </button>
        </div>
        <p class="muted small">
          A snapshot holds a sandbox's files and runtime plan, not its running processes: a sandbox made from
          it starts its app fresh.
        </p>
        {actionError ? <ErrorNote error={actionError} /> : null}
        {loadError ? <ErrorNote error={loadError} onRetry={load} /> : null}
        {snapshots === null && !loadError ? <p class="muted">Loading snapshots…</p> : null}
        {snapshots?.length === 0 ? (
          <div class="empty">
            <p>No snapshots yet. Open a sandbox and use Snapshot… to freeze its files.</p>
          </div>
        ) : null}
        {snapshots?.length ? (
          <div class="table-wrap">
            <table class="sandboxes snapshots-table">
              <thead>
                <tr>
                  <th scope="col">Snapshot</th>
                  <th scope="col">Size</th>
                  <th scope="col">Created</th>
                  <th scope="col">Source sandbox</th>
                  <th scope="col">Labels</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {snapshots.map((s) => (
                  <tr key={s.id} data-snapshot-id={s.id}>
                    <td>
                      <strong class="snapshot-name">{s.name ?? <span class="muted">unnamed</span>}</strong>
                      <div class="mono small muted">{s.id}</div>
                    </td>
                    <td>{s.sizeMb} MB</td>
                    <td title={s.createdAt}>{ago(s.createdAt, now)} ago</td>
                    <td>
                      <a
                        href={`/sandboxes/${s.sandboxId}`}
                        class="mono"
                        onClick={linkClick(`/sandboxes/${s.sandboxId}`)}
                      >
                        {s.sandboxId}
                      </a>
                    </td>
                    <td class="small">
                      {Object.entries(s.labels)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(', ') || <span class="muted">—</span>}
                    </td>
                    <td>
                      <div class="row-actions">
                        <button
                          type="button"
                          class="primary"
                          disabled={busy !== null}
                          onClick={() => createFrom(s)}
                        >
                          {busy === s.id ? 'Working…' : 'Create sandbox'}
                        </button>
                        <button
                          type="button"
                          class="danger"
                          disabled={busy !== null}
                          onClick={() => remove(s)}
                        >
                          Delete
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </section>
    </main>
  );
}
