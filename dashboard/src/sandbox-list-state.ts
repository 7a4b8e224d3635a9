import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api-client';
import { type StreamStatus, useEventStream } from './event-stream';
import type { PreviewdEvent, Sandbox } from './types';

export interface SandboxList {
  sandboxes: Sandbox[] | null;
  loadError: unknown;
  stream: StreamStatus;
  reload: () => void;
  /** Put a sandbox in the list at once (a create that just answered). */
  upsert: (sandbox: Sandbox) => void;
  remove: (id: string) => void;
}

const newestFirst = (a: Sandbox, b: Sandbox) =>
  a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0;

/**
 * The sandbox list, kept live by `/v1/events`: a state event changes the row at once, then the
 * sandbox is fetched again for what the event does not carry (previews, times). No polling.
 * The list is (re)loaded each time the stream opens, so nothing is missed before it or across a
 * reconnect.
 */
export function useSandboxList(): SandboxList {
  const [byId, setById] = useState<Map<string, Sandbox> | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [stream, setStream] = useState<StreamStatus>('connecting');
  // Sandboxes changed by an event while a full load was in flight: the load must not overwrite them.
  const touched = useRef(new Set<string>());
  const gone = useRef(new Set<string>());

  const upsert = useCallback((sandbox: Sandbox) => {
    if (gone.current.has(sandbox.id) || sandbox.state === 'deleted') return;
    setById((prev) => new Map(prev ?? []).set(sandbox.id, sandbox));
  }, []);
  const remove = useCallback((id: string) => {
    gone.current.add(id);
    setById((prev) => {
      if (!prev?.has(id)) return prev;
      const next = new Map(prev);
      next.delete(id);
      return next;
    });
  }, []);

  const reload = useCallback(() => {
    touched.current.clear();
    setLoadError(null);
    api
      .listSandboxes()
      .then((list) => {
        setById((prev) => {
          const next = new Map<string, Sandbox>();
          for (const s of list) if (!gone.current.has(s.id)) next.set(s.id, s);
          for (const id of touched.current) {
            const mine = prev?.get(id);
            if (mine) next.set(id, mine);
          }
          return next;
        });
      })
      .catch(setLoadError);
  }, []);

  const refetch = useCallback(
    (id: string) => {
      api
        .getSandbox(id)
        .then(upsert)
        .catch(() => undefined);
    },
    [upsert],
  );

  const onEvent = useCallback(
    (event: PreviewdEvent) => {
      const id = event.sandboxId;
      if (!id) return;
      touched.current.add(id);
      switch (event.type) {
        case 'sandbox.deleted':
          remove(id);
          return;
        case 'sandbox.state': {
          const data = event.data as { to: Sandbox['state']; error?: Sandbox['error'] };
          setById((prev) => {
            const row = prev?.get(id);
            if (!prev || !row) return prev;
            return new Map(prev).set(id, { ...row, state: data.to, error: data.error ?? row.error });
          });
          refetch(id);
          return;
        }
        case 'sandbox.created':
        case 'sandbox.ports':
        case 'sandbox.lost':
          refetch(id);
          return;
        default:
          return;
      }
    },
    [refetch, remove],
  );

  // Loaded at once, and again whenever the stream (re)opens so nothing between the two is missed.
  useEffect(reload, []);
  useEventStream(
    '/v1/events?types=sandbox.created,sandbox.state,sandbox.deleted,sandbox.ports,sandbox.lost',
    {
      onEvent,
      onStatus: setStream,
      onOpen: () => reload(),
    },
  );

  const sandboxes = byId ? [...byId.values()].sort(newestFirst) : null;
  return { sandboxes, loadError, stream, reload, upsert, remove };
}
