import { useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import { parseLabels } from './labels-input';
import { linkClick, navigate } from './router';
import type { Sandbox, Snapshot } from './types';

/** States in which the API takes a snapshot or a fork (docs/snapshots.md: `snapshot_unavailable` else). */
const freezable = new Set<Sandbox['state']>(['running', 'paused', 'stopped']);

/**
 * Snapshot (a name and labels: `POST /v1/sandboxes/{id}/snapshots`) and Fork
 * (`POST /v1/sandboxes/{id}/fork`, then the new sandbox's page) for one sandbox.
 */
export function SnapshotForkActions({ sandbox }: { sandbox: Sandbox }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState<'snapshot' | 'fork' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [taken, setTaken] = useState<Snapshot | null>(null);
  const ready = freezable.has(sandbox.state) && busy === null;

  // The fields are read from the form when it is sent (uncontrolled inputs: nothing to race).
  const takeSnapshot = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const name = String(form.get('name') ?? '');
    setError(null);
    setTaken(null);
    try {
      const parsed = parseLabels(String(form.get('labels') ?? ''));
      setBusy('snapshot');
      const snap = await api.snapshot(sandbox.id, {
        ...(name.trim() ? { name: name.trim() } : {}),
        ...(Object.keys(parsed).length ? { labels: parsed } : {}),
      });
      setTaken(snap);
      setOpen(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const fork = async () => {
    setError(null);
    setBusy('fork');
    try {
      const copy = await api.fork(sandbox.id);
      navigate(`/sandboxes/${copy.id}`);
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };

  return (
    <div class="snapshot-fork">
      <div class="actions" role="toolbar" aria-label="Snapshot and fork">
        <button
          type="button"
          aria-expanded={open}
          disabled={!ready}
          title="Freeze this sandbox's files; start new sandboxes from them"
          onClick={() => setOpen(!open)}
        >
          Snapshot…
        </button>
        <button
          type="button"
          disabled={!ready}
          title="A new sandbox from these files now, its app started fresh"
          onClick={fork}
        >
          {busy === 'fork' ? 'Forking…' : 'Fork'}
        </button>
      </div>
      {open ? (
        <form class="snapshot-form" onSubmit={takeSnapshot} aria-label="Take a snapshot">
          <label>
            Name
            <input id="snapshot-name" name="name" type="text" maxLength={128} placeholder="optional" />
          </label>
          <label>
            Labels
            <input
              id="snapshot-labels"
              name="labels"
              type="text"
              maxLength={4096}
              placeholder="key=value, key2=value2"
            />
          </label>
          <button type="submit" class="primary" disabled={busy !== null}>
            {busy === 'snapshot' ? 'Taking…' : 'Take snapshot'}
          </button>
          <button type="button" class="ghost" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </form>
      ) : null}
      {taken ? (
        <p class="notice" role="status" data-snapshot-id={taken.id}>
          Snapshot {taken.name ? `"${taken.name}" ` : ''}
          <span class="mono">{taken.id}</span> taken ({taken.sizeMb} MB).{' '}
          <a href="/snapshots" onClick={linkClick('/snapshots')}>
            See the snapshots
          </a>
        </p>
      ) : null}
      {error ? <ErrorNote error={error} /> : null}
    </div>
  );
}
