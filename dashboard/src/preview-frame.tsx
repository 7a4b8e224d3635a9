import { useEffect, useState } from 'preact/hooks';
import { api } from './api-client';
import { ErrorNote } from './error-note';
import type { Sandbox } from './types';

/**
 * The preview in an iframe, switchable between the exposed ports. A private sandbox gets a fresh
 * token per port (its URL carries it once; the edge turns it into a cookie for that host).
 * The frame is shown only while the sandbox runs: a frame left open on a stopped sandbox would
 * wake it (the edge starts sleeping sandboxes on request).
 */
export function PreviewFrame({ sandbox }: { sandbox: Sandbox }) {
  const ports = sandbox.previews.map((p) => p.port);
  const [port, setPort] = useState<number | undefined>(ports[0]);
  const [src, setSrc] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reloads, setReloads] = useState(0);
  const running = sandbox.state === 'running';
  const preview = sandbox.previews.find((p) => p.port === port) ?? sandbox.previews[0];
  const isPrivate = sandbox.visibility === 'private';

  useEffect(() => {
    if (port === undefined && ports[0] !== undefined) setPort(ports[0]);
  }, [port, ports[0]]);

  // Resolve the URL once per port (and per explicit reload), never on unrelated updates:
  // a new src would reload the app and lose its state.
  useEffect(() => {
    setError(null);
    if (!running || !preview) {
      setSrc(null);
      return;
    }
    if (!isPrivate) {
      setSrc(preview.url);
      return;
    }
    let cancelled = false;
    setSrc(null);
    api
      .mintPreviewToken(sandbox.id, preview.port, 3600)
      .then((t) => {
        if (!cancelled) setSrc(t.url);
      })
      .catch((err) => {
        if (!cancelled) setError(err);
      });
    return () => {
      cancelled = true;
    };
  }, [sandbox.id, preview?.url, isPrivate, running, reloads]);

  return (
    <section class="card preview" aria-labelledby="preview-title">
      <div class="section-head">
        <h2 id="preview-title">Preview</h2>
        {ports.length > 1 ? (
          <label>
            Port{' '}
            <select
              value={String(preview?.port ?? '')}
              onChange={(e) => setPort(Number((e.target as HTMLSelectElement).value))}
            >
              {ports.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
        ) : preview ? (
          <span class="muted small">port {preview.port}</span>
        ) : null}
        {isPrivate ? <span class="tag">private · token minted for you</span> : null}
        <span class="spacer" />
        {preview ? (
          <>
            <button type="button" class="ghost" disabled={!running} onClick={() => setReloads((n) => n + 1)}>
              Reload
            </button>
            <a href={preview.url} target="_blank" rel="noopener" class="button ghost">
              Open ↗
            </a>
          </>
        ) : null}
      </div>
      {error ? <ErrorNote error={error} onRetry={() => setReloads((n) => n + 1)} /> : null}
      {!preview ? (
        <p class="empty">This sandbox exposes no port. Add one with POST /v1/sandboxes/{sandbox.id}/ports.</p>
      ) : !running ? (
        <p class="empty">
          The sandbox is {sandbox.state}.{' '}
          {sandbox.state === 'starting' || sandbox.state === 'creating'
            ? 'The preview appears when it is running.'
            : 'Start it to see the preview.'}
        </p>
      ) : src ? (
        <iframe
          key={`${src}#${reloads}`}
          src={src}
          title={`Preview of port ${preview.port}`}
          class="preview-frame"
          data-preview-port={preview.port}
        />
      ) : (
        <p class="muted">Getting a preview token…</p>
      )}
    </section>
  );
}
