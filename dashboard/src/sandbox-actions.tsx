import { useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import { navigate } from './router';
import type { Sandbox } from './types';

type Action = 'start' | 'stop' | 'restart' | 'keepalive' | 'delete' | 'share';

/** Start, stop, restart app, keepalive, delete, and a share link copied to the clipboard. */
export function SandboxActions({
  sandbox,
  onChanged,
}: {
  sandbox: Sandbox;
  onChanged: (s: Sandbox) => void;
}) {
  const [busy, setBusy] = useState<Action | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [shareUrl, setShareUrl] = useState<string | null>(null);
  const s = sandbox;
  const asleep = s.state === 'stopped' || s.state === 'paused' || s.state === 'error';
  const awake = s.state === 'running' || s.state === 'starting' || s.state === 'paused';

  const run = async (action: Action, fn: () => Promise<void>) => {
    setBusy(action);
    setError(null);
    setNotice(null);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const share = () =>
    run('share', async () => {
      const preview = s.previews[0];
      if (!preview) throw new Error('This sandbox exposes no port to share.');
      const url =
        s.visibility === 'private'
          ? (await api.mintPreviewToken(s.id, preview.port, 86_400)).url
          : preview.url;
      setShareUrl(url);
      try {
        await navigator.clipboard.writeText(url);
        setNotice(
          s.visibility === 'private'
            ? 'Share link (valid 24 h) copied to the clipboard.'
            : 'Preview link copied.',
        );
      } catch {
        setNotice('Copy the link below (the clipboard is not available here).');
      }
    });

  return (
    <div class="actions-wrap">
      <div class="actions" role="toolbar" aria-label="Sandbox actions">
        <button
          type="button"
          class="primary"
          disabled={!asleep || busy !== null}
          onClick={() => run('start', async () => onChanged(await api.start(s.id)))}
        >
          {busy === 'start' ? 'Starting…' : 'Start'}
        </button>
        <button
          type="button"
          disabled={!awake || busy !== null}
          onClick={() => run('stop', async () => onChanged(await api.stop(s.id)))}
        >
          {busy === 'stop' ? 'Stopping…' : 'Stop'}
        </button>
        <button
          type="button"
          disabled={s.state !== 'running' || busy !== null}
          onClick={() =>
            run('restart', async () => {
              await api.restartApp(s.id);
              setNotice('The app is restarting: watch the logs.');
            })
          }
        >
          Restart app
        </button>
        <button
          type="button"
          disabled={busy !== null || s.state === 'deleted'}
          title="Hold the sandbox awake for an hour"
          onClick={() =>
            run('keepalive', async () => {
              const next = await api.keepalive(s.id, 3600);
              onChanged(next);
              setNotice(
                `Kept awake until ${new Date(next.keepAliveUntil ?? Date.now()).toLocaleTimeString()}.`,
              );
            })
          }
        >
          Keep alive 1 h
        </button>
        <button type="button" disabled={busy !== null || !s.previews.length} onClick={share}>
          Share link
        </button>
        <button
          type="button"
          class="danger"
          disabled={busy !== null}
          onClick={() => {
            if (!confirm(`Delete sandbox ${s.id} and its files?`)) return;
            void run('delete', async () => {
              await api.remove(s.id);
              navigate('/');
            });
          }}
        >
          Delete
        </button>
      </div>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {shareUrl ? (
        <label class="share">
          Share link{' '}
          <input
            class="share-url"
            readOnly
            value={shareUrl}
            onFocus={(e) => (e.target as HTMLInputElement).select()}
          />
        </label>
      ) : null}
      {error ? <ErrorNote error={error} /> : null}
    </div>
  );
}
