import { useMemo, useState } from 'preact/hooks';
import { api } from './api-client';
import { CreatePanel } from './create-panel';
import { ErrorNote } from './error-note';
import { HostOverview } from './host-overview';
import { linkClick } from './router';
import { runtimeLabel } from './runtime-label';
import { type SandboxList, useSandboxList } from './sandbox-list-state';
import { StateBadge } from './state-badge';
import { ago, useNow } from './time-format';
import { type Sandbox, type SandboxState, sandboxStates } from './types';

function matches(s: Sandbox, text: string): boolean {
  if (!text) return true;
  const hay = [
    s.id,
    s.template,
    s.runtime.framework,
    s.runtime.image,
    s.owner,
    ...Object.entries(s.labels).flat(),
  ]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
  return text
    .toLowerCase()
    .split(/\s+/)
    .every((word) => hay.includes(word));
}

/**
 * The list page: an overview (counts by state; the memory budget for an admin), create, filter,
 * search, bulk actions, and every sandbox's live state.
 */
export function ListView({ admin }: { admin: boolean }) {
  const list = useSandboxList();
  return (
    <main class="page list-page">
      <HostOverview sandboxes={list.sandboxes} admin={admin} />
      <CreatePanel onCreated={list.upsert} />
      <SandboxTable list={list} />
    </main>
  );
}

function SandboxTable({ list }: { list: SandboxList }) {
  const now = useNow();
  const [state, setState] = useState<SandboxState | ''>('');
  const [text, setText] = useState('');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [bulkError, setBulkError] = useState<unknown>(null);
  const [bulkBusy, setBulkBusy] = useState(false);

  const shown = useMemo(
    () => (list.sandboxes ?? []).filter((s) => (!state || s.state === state) && matches(s, text)),
    [list.sandboxes, state, text],
  );
  const chosen = shown.filter((s) => selected.has(s.id));
  const allChosen = shown.length > 0 && chosen.length === shown.length;

  const toggle = (id: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const bulk = async (what: 'stop' | 'delete') => {
    if (what === 'delete' && !confirm(`Delete ${chosen.length} sandbox(es) and their files?`)) return;
    setBulkBusy(true);
    setBulkError(null);
    const results = await Promise.allSettled(
      chosen.map((s) => (what === 'stop' ? api.stop(s.id) : api.remove(s.id).then(() => list.remove(s.id)))),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) setBulkError(failed.reason);
    setSelected(new Set());
    setBulkBusy(false);
  };

  return (
    <section class="card" aria-labelledby="list-title">
      <div class="section-head">
        <h2 id="list-title">Sandboxes</h2>
        <span class={`live live-${list.stream}`} title="Live updates from /v1/events">
          {list.stream === 'open' ? 'live' : list.stream === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
      </div>
      <div class="toolbar">
        <label>
          State{' '}
          <select
            value={state}
            onChange={(e) => setState((e.target as HTMLSelectElement).value as SandboxState)}
          >
            <option value="">all</option>
            {sandboxStates.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Search{' '}
          <input
            type="search"
            placeholder="id, template, owner, label"
            value={text}
            onInput={(e) => setText((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="button" disabled={!chosen.length || bulkBusy} onClick={() => bulk('stop')}>
          Stop selected
        </button>
        <button
          type="button"
          class="danger"
          disabled={!chosen.length || bulkBusy}
          onClick={() => bulk('delete')}
        >
          Delete selected
        </button>
      </div>
      {bulkError ? <ErrorNote error={bulkError} /> : null}
      {list.loadError ? <ErrorNote error={list.loadError} onRetry={list.reload} /> : null}
      {list.sandboxes === null && !list.loadError ? <p class="muted">Loading sandboxes…</p> : null}
      {list.sandboxes?.length === 0 ? (
        <div class="empty">
          <p>
            <strong>No sandboxes yet — create one from a template</strong> above, or drop a folder or a zip.
          </p>
        </div>
      ) : null}
      {list.sandboxes && list.sandboxes.length > 0 && shown.length === 0 ? (
        <p class="empty">Nothing matches this filter. Clear the search or pick another state.</p>
      ) : null}
      {shown.length > 0 ? (
        <div class="table-wrap">
          <table class="sandboxes">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all shown"
                    checked={allChosen}
                    onChange={() => setSelected(allChosen ? new Set() : new Set(shown.map((s) => s.id)))}
                  />
                </th>
                <th scope="col">Sandbox</th>
                <th scope="col">State</th>
                <th scope="col">Template / runtime</th>
                <th scope="col">Age</th>
                <th scope="col">Last activity</th>
                <th scope="col">Owner</th>
                <th scope="col">Previews</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => (
                <tr key={s.id} data-sandbox-id={s.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select ${s.id}`}
                      checked={selected.has(s.id)}
                      onChange={() => toggle(s.id)}
                    />
                  </td>
                  <td>
                    <a href={`/sandboxes/${s.id}`} class="mono" onClick={linkClick(`/sandboxes/${s.id}`)}>
                      {s.id}
                    </a>
                    {s.visibility === 'private' ? <span class="tag">private</span> : null}
                  </td>
                  <td>
                    <StateBadge state={s.state} />
                    {s.error && s.state === 'error' ? <div class="small muted">{s.error.message}</div> : null}
                  </td>
                  <td>{runtimeLabel(s)}</td>
                  <td title={s.createdAt}>{ago(s.createdAt, now)}</td>
                  <td title={s.lastActivityAt}>{ago(s.lastActivityAt, now)} ago</td>
                  <td>{s.owner ?? <span class="muted">—</span>}</td>
                  <td>
                    {s.previews.length ? (
                      s.previews.map((p) => (
                        <a key={p.port} href={p.url} target="_blank" rel="noopener" class="port">
                          :{p.port}
                        </a>
                      ))
                    ) : (
                      <span class="muted">none</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
