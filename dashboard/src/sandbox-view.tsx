import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { AccessLogPanel } from './access-log-panel';
import { ApiError, api } from './api-client';
import { EgressControl } from './egress-control';
import { ErrorNote } from './error-note';
import { useEventStream } from './event-stream';
import { FilePanel } from './file-panel';
import { LogPanel } from './log-panel';
import { PanelTabs } from './panel-tabs';
import { PreviewFrame } from './preview-frame';
import { linkClick } from './router';
import { runtimeLabel } from './runtime-label';
import { SandboxActions } from './sandbox-actions';
import { SnapshotForkActions } from './snapshot-fork-actions';
import { StateBadge } from './state-badge';
import { TerminalPanel } from './terminal-panel';
import { ago, useNow } from './time-format';
import { TimelinePanel } from './timeline-panel';
import type { PreviewdEvent, Sandbox } from './types';
import { UsagePanel } from './usage-panel';

/**
 * One sandbox: preview, files + editor, terminal, logs, events and access log, usage charts. Its state follows
 * `/v1/sandboxes/:id/events` (history replayed from the first event, then live).
 */
export function SandboxView({ id }: { id: string }) {
  const now = useNow();
  const [sandbox, setSandbox] = useState<Sandbox | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [deleted, setDeleted] = useState(false);
  const [events, setEvents] = useState<PreviewdEvent[]>([]);
  const [changed, setChanged] = useState<{ paths: string[]; seq: number }>({ paths: [], seq: 0 });

  const refetch = useCallback(() => {
    api
      .getSandbox(id)
      .then((s) => {
        setSandbox(s);
        setLoadError(null);
      })
      .catch((err) => {
        if (err instanceof ApiError && err.status === 404) setDeleted(true);
        else setLoadError(err);
      });
  }, [id]);

  useEffect(refetch, [refetch]);

  // A burst of events (the replayed history, a start) needs one fetch, not one per event.
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const refetchSoon = useCallback(() => {
    clearTimeout(timer.current);
    timer.current = setTimeout(refetch, 150);
  }, [refetch]);
  useEffect(() => () => clearTimeout(timer.current), []);

  useEventStream(`/v1/sandboxes/${encodeURIComponent(id)}/events?lastEventId=0`, {
    onEvent: (e) => {
      setEvents((prev) => (prev.some((p) => p.id === e.id) ? prev : [...prev.slice(-499), e]));
      if (e.type === 'sandbox.state') {
        // The stream starts with the sandbox's history: only a change newer than what was
        // fetched moves the state here (at once); the refetch brings the rest.
        const data = e.data as { to: Sandbox['state']; error?: Sandbox['error'] };
        setSandbox((s) =>
          s && Date.parse(e.at) >= Date.parse(s.updatedAt)
            ? { ...s, state: data.to, error: data.error ?? s.error }
            : s,
        );
        refetchSoon();
      } else if (e.type === 'sandbox.deleted') setDeleted(true);
      else if (e.type === 'sandbox.ports') refetchSoon();
      else if (e.type === 'files.changed') {
        const paths = (e.data as { paths?: string[] }).paths ?? [];
        setChanged((c) => ({ paths, seq: c.seq + 1 }));
      }
    },
    onOpen: () => refetchSoon(),
  });

  if (deleted) {
    return (
      <main class="page">
        <div class="card empty">
          <p>
            <strong>Sandbox {id} does not exist (any more).</strong>
          </p>
          <a href="/" onClick={linkClick('/')}>
            Back to the list
          </a>
        </div>
      </main>
    );
  }
  if (!sandbox) {
    return (
      <main class="page">
        {loadError ? (
          <ErrorNote error={loadError} onRetry={refetch} />
        ) : (
          <p class="muted">Loading sandbox…</p>
        )}
      </main>
    );
  }

  const running = sandbox.state === 'running';
  return (
    <main class="page sandbox-page" data-sandbox-id={sandbox.id}>
      <header class="card sandbox-head">
        <div class="title-row">
          <a href="/" onClick={linkClick('/')} class="back">
            ← Sandboxes
          </a>
          <h1 class="mono">{sandbox.id}</h1>
          <StateBadge state={sandbox.state} />
          {sandbox.visibility === 'private' ? <span class="tag">private</span> : null}
        </div>
        <dl class="facts">
          <div>
            <dt>Template / runtime</dt>
            <dd>{runtimeLabel(sandbox)}</dd>
          </div>
          <div>
            <dt>Age</dt>
            <dd>{ago(sandbox.createdAt, now)}</dd>
          </div>
          <div>
            <dt>Last activity</dt>
            <dd>{ago(sandbox.lastActivityAt, now)} ago</dd>
          </div>
          <div>
            <dt>Owner</dt>
            <dd>{sandbox.owner ?? '—'}</dd>
          </div>
          {sandbox.keepAliveUntil && Date.parse(sandbox.keepAliveUntil) > now ? (
            <div>
              <dt>Kept awake until</dt>
              <dd>{new Date(sandbox.keepAliveUntil).toLocaleTimeString()}</dd>
            </div>
          ) : null}
        </dl>
        {sandbox.error && sandbox.state === 'error' ? (
          <ErrorNote
            error={
              new ApiError(
                0,
                sandbox.error.code,
                sandbox.error.message,
                'Start it again, or read the logs below.',
              )
            }
          />
        ) : null}
        <SandboxActions sandbox={sandbox} onChanged={setSandbox} />
        <SnapshotForkActions sandbox={sandbox} />
        <EgressControl sandbox={sandbox} onChanged={setSandbox} />
      </header>
      <div class="sandbox-grid">
        <PreviewFrame sandbox={sandbox} />
        <FilePanel id={sandbox.id} changed={changed} />
        <TerminalPanel id={sandbox.id} running={running} />
        <PanelTabs
          tabs={[
            {
              id: 'logs',
              label: 'App logs',
              render: () => <LogPanel id={sandbox.id} following={running} runKey={sandbox.startedAt ?? ''} />,
            },
            {
              id: 'events',
              label: `Events (${events.length})`,
              render: () => <TimelinePanel events={events} />,
            },
            { id: 'access', label: 'Access log', render: () => <AccessLogPanel id={sandbox.id} /> },
          ]}
        />
        <UsagePanel sandbox={sandbox} />
      </div>
    </main>
  );
}
