import { useEffect, useRef, useState } from 'preact/hooks';
import { eventTypes } from '../../src/domain/events';
import { verifySession } from './api-client';
import type { PreviewdEvent } from './types';

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
  // Bumped to open the stream again after the browser gave up on it (see onerror).
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!url) return;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
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
    source.onerror = () => {
      current.current.onStatus?.('reconnecting');
      // The browser retries a dropped connection by itself, but gives up on an answer that is
      // not a stream (401 after the session ended, 5xx while the server restarts): sign out on
      // 401, else open it again a little later.
      if (source.readyState !== EventSource.CLOSED) return;
      void verifySession().then((signedIn) => {
        if (signedIn && !closed) retry = setTimeout(() => setAttempt((n) => n + 1), 3000);
      });
    };
    return () => {
      closed = true;
      clearTimeout(retry);
      source.close();
    };
  }, [url, attempt]);
}
