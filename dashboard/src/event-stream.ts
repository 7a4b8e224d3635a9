import { useEffect, useRef } from 'preact/hooks';
import type { PreviewdEvent } from './types';

/** Every event type previewd publishes (src/domain/events.ts); SSE names each event by its type. */
export const eventTypes = [
  'sandbox.created',
  'sandbox.state',
  'sandbox.deleted',
  'sandbox.expired',
  'sandbox.lost',
  'port.open',
  'port.closed',
  'process.exit',
  'app.crashed',
  'files.changed',
  'sandbox.ports',
  'sandbox.preview_tokens_revoked',
] as const;

export type StreamStatus = 'connecting' | 'open' | 'reconnecting';

export interface EventStreamHandlers {
  onEvent: (event: PreviewdEvent) => void;
  /** The stream (re)opened: after a reconnect the browser resumes with Last-Event-ID. */
  onOpen?: (reconnected: boolean) => void;
  onStatus?: (status: StreamStatus) => void;
}

/**
 * Subscribes to a previewd event stream (`/v1/events`, `/v1/sandboxes/:id/events`) with the
 * session cookie. EventSource reconnects on its own and sends Last-Event-ID, so nothing is
 * missed across a dropped connection. Closed when the component goes away or `url` changes.
 */
export function useEventStream(url: string | null, handlers: EventStreamHandlers): void {
  const current = useRef(handlers);
  current.current = handlers;
  useEffect(() => {
    if (!url) return;
    const source = new EventSource(url, { withCredentials: true });
    let opened = false;
    current.current.onStatus?.('connecting');
    const onMessage = (msg: MessageEvent<string>) => {
      try {
        current.current.onEvent(JSON.parse(msg.data) as PreviewdEvent);
      } catch {
        // a malformed event is skipped
      }
    };
    for (const type of eventTypes) source.addEventListener(type, onMessage);
    source.onopen = () => {
      current.current.onStatus?.('open');
      current.current.onOpen?.(opened);
      opened = true;
    };
    source.onerror = () => current.current.onStatus?.('reconnecting');
    return () => source.close();
  }, [url]);
}

export interface LogChunk {
  stream: 'stdout' | 'stderr';
  data: string;
}

/**
 * Follows the app's output (`/logs?follow=1`, SSE). The server replays the tail on every
 * connection, so a reconnect starts the shown log over (`onReset`) instead of repeating lines.
 */
export function useLogStream(
  url: string | null,
  onChunk: (chunk: LogChunk) => void,
  onReset: () => void,
  onStatus?: (status: StreamStatus) => void,
): void {
  const handlers = useRef({ onChunk, onReset, onStatus });
  handlers.current = { onChunk, onReset, onStatus };
  useEffect(() => {
    if (!url) return;
    const source = new EventSource(url, { withCredentials: true });
    const onData = (msg: MessageEvent<string>) => {
      try {
        handlers.current.onChunk(JSON.parse(msg.data) as LogChunk);
      } catch {
        // skipped
      }
    };
    source.addEventListener('stdout', onData);
    source.addEventListener('stderr', onData);
    source.onopen = () => {
      handlers.current.onReset();
      handlers.current.onStatus?.('open');
    };
    source.onerror = () => handlers.current.onStatus?.('reconnecting');
    return () => source.close();
  }, [url]);
}
