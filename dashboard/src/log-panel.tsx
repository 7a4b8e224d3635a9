import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api-client';
import { ErrorNote } from './error-note';

interface Line {
  stream: 'stdout' | 'stderr';
  text: string;
}

const maxChars = 400_000;

/** Reads an SSE body (`event:` / `data:` blocks) and hands each block's event name and data on. */
async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: string, data: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  signal.addEventListener('abort', () => void reader.cancel().catch(() => undefined));
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(event, data.join('\n'));
      end = buffer.indexOf('\n\n');
    }
  }
}

/**
 * The app's own output (install, dev server) from `/logs` as SSE. While the sandbox runs the
 * stream follows; it is opened again each time the sandbox (re)starts (`runKey`), not polled.
 */
export function LogPanel({ id, following, runKey }: { id: string; following: boolean; runKey: string }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [status, setStatus] = useState<'loading' | 'following' | 'ended' | 'error'>('loading');
  const [error, setError] = useState<unknown>(null);
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    const controller = new AbortController();
    setLines([]);
    setError(null);
    setStatus('loading');
    const url = `/v1/sandboxes/${encodeURIComponent(id)}/logs?tail=1000${following ? '&follow=1' : ''}`;
    (async () => {
      const res = await fetch(url, {
        credentials: 'same-origin',
        headers: { accept: 'text/event-stream' },
        signal: controller.signal,
      });
      if (!res.ok || !res.body) {
        const body = (await res.json().catch(() => ({}))) as {
          error?: { code: string; message: string; hint?: string };
        };
        throw new ApiError(
          res.status,
          body.error?.code ?? 'http_error',
          body.error?.message ?? `HTTP ${res.status}`,
          body.error?.hint,
        );
      }
      if (following) setStatus('following');
      await readSse(
        res.body,
        (event, data) => {
          if (event !== 'stdout' && event !== 'stderr') return;
          const chunk = JSON.parse(data) as { data: string };
          setLines((prev) => {
            const next: Line[] = [...prev, { stream: event, text: chunk.data }];
            let size = next.reduce((n, l) => n + l.text.length, 0);
            while (size > maxChars && next.length > 1) size -= next.shift()!.text.length;
            return next;
          });
        },
        controller.signal,
      );
      setStatus('ended');
    })().catch((err) => {
      if (controller.signal.aborted) return;
      setError(err);
      setStatus('error');
    });
    return () => controller.abort();
  }, [id, following, runKey]);

  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  return (
    <div class="log-panel">
      <p class="muted small" data-log-status={status}>
        {status === 'following'
          ? 'Following the app output live.'
          : status === 'ended'
            ? following
              ? 'The log stream ended (the app stopped).'
              : 'The sandbox is not running: the last output is shown.'
            : status === 'loading'
              ? 'Loading…'
              : ''}
      </p>
      {error ? <ErrorNote error={error} /> : null}
      <pre
        class="log"
        ref={box}
        role="log"
        aria-label="App output"
        onScroll={(e) => {
          const el = e.currentTarget as HTMLPreElement;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {lines.length === 0 && status !== 'loading' ? <span class="muted">No output yet.</span> : null}
        {lines.map((l, i) => (
          <span key={i} class={l.stream === 'stderr' ? 'stderr' : undefined}>
            {l.text}
          </span>
        ))}
      </pre>
    </div>
  );
}
