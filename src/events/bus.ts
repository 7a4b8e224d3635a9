import { EventEmitter } from 'node:events';
import type { EventType, NewEvent, PreviewdEvent } from '../domain/events.js';
import type { EventFilter, Store } from '../store/store.js';

export type EventListener = (event: PreviewdEvent) => void;

/**
 * Persists each event (so subscribers can resume by id) and then hands it to in-process
 * subscribers. Subscribers must not throw; one that does is logged by the caller and skipped.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor(private readonly store: Store) {
    this.emitter.setMaxListeners(0);
  }

  async publish<T extends EventType>(event: NewEvent<T>): Promise<PreviewdEvent<T>> {
    const stored = (await this.store.appendEvent(event)) as PreviewdEvent<T>;
    this.emitter.emit('event', stored);
    return stored;
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    const safe: EventListener = (event) => {
      try {
        listener(event);
      } catch {
        // a faulty subscriber must not break publishing
      }
    };
    this.emitter.on('event', safe);
    return () => this.emitter.off('event', safe);
  }

  /** Stored events after `afterId`, for resume. */
  history(opts: EventFilter): Promise<PreviewdEvent[]> {
    return this.store.listEvents(opts);
  }
}
