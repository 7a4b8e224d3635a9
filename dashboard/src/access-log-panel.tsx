import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import { clock } from './time-format';
import type { AccessLogEntry } from './types';

/** The last preview requests (`GET …/access-log`), fetched when shown and on Refresh. */
export function AccessLogPanel({ id }: { id: string }) {
  const [entries, setEntries] = useState<AccessLogEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    setError(null);
    api
      .accessLog(id, 200)
      .then((r) => setEntries(r.entries))
      .catch(setError);
  }, [id]);
  useEffect(load, [load]);

  return (
    <div>
      <div class="toolbar">
        <span class="muted small">Newest first; kept in memory by the edge.</span>
        <span class="spacer" />
        <button type="button" onClick={load}>
          Refresh
        </button>
      </div>
      {error ? <ErrorNote error={error} onRetry={load} /> : null}
      {entries === null && !error ? <p class="muted">Loading…</p> : null}
      {entries?.length === 0 ? (
        <p class="empty">No preview requests yet. Open the preview to see some.</p>
      ) : null}
      {entries?.length ? (
        <div class="table-wrap">
          <table class="access-log">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Request</th>
                <th scope="col">Port</th>
                <th scope="col">Status</th>
                <th scope="col">Bytes</th>
                <th scope="col">ms</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e, i) => (
                <tr key={i}>
                  <td>{clock(e.time)}</td>
                  <td class="mono">
                    {e.websocket ? 'WS ' : `${e.method} `}
                    {e.path}
                  </td>
                  <td>{e.port}</td>
                  <td class={e.status >= 500 ? 'bad' : e.status >= 400 ? 'warn' : undefined}>{e.status}</td>
                  <td>{e.bytes}</td>
                  <td>{Math.round(e.durationMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}
