import { EventEmitter } from 'node:events';
import type { EventType, NewEvent, PreviewdEvent } from '../domain/events.js';
import type { Fence } from '../domain/node.js';
import type { EventFilter, Store } from '../store/store.js';

export type EventListener = (event: PreviewdEvent) => void;

export interface EventBusOptions {
  /**
   * > 0: also read the store every `pollMs` (between `start()` and `stop()`) for events other
   * nodes wrote. 0 (default): read only after local writes (`publish`, `pump`).
   */
  pollMs?: number;
  /** A failed timer read (store unreachable); the next tick tries again. */
  onError?: (err: unknown) => void;
}

const PAGE = 500;

/**
 * The event feed of this process, driven by the store: events are written by the store (with
 * their state change, the outbox, or by `publish`), and the bus reads everything after the last
 * id it delivered and hands it to subscribers — strictly in id order, each event once, whichever
 * node wrote it. The store's id rule (see store.ts) guarantees that reading after the last id
 * never skips an event that commits later.
 *
 * Delivery starts at the store's last event id when the bus is made: construct it before the
 * writes its subscribers must see. Subscribers must not throw; one that does is skipped.
 */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly pollMs: number;
  private readonly onError: (err: unknown) => void;
  /** The last id delivered to subscribers; undefined until the store's head was read. */
  private lastId: number | undefined;
  private headRead: Promise<void> | undefined;
  /** The chain of drains: one at a time, in order. */
  private tail: Promise<void> = Promise.resolve();
  /** A drain that has been asked for and not started yet: it will see every write made so far. */
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    opts: EventBusOptions = {},
  ) {
    this.emitter.setMaxListeners(0);
    const pollMs = opts.pollMs ?? 0;
    if (!Number.isInteger(pollMs) || pollMs < 0 || pollMs > 3_600_000) {
      throw new RangeError('pollMs must be an integer in 0..3600000');
    }
    this.pollMs = pollMs;
    this.onError = opts.onError ?? (() => {});
    this.readHead().catch(() => {
      // read again by the first pump
    });
  }

  /** Appends the event to the store (refused when `fence` is stale) and delivers it; resolves after local subscribers got it. */
  async publish<T extends EventType>(
    event: NewEvent<T>,
    opts: { fence?: Fence } = {},
  ): Promise<PreviewdEvent<T>> {
    await this.readHead();
    const stored = (await this.store.appendEvent(event, opts)) as PreviewdEvent<T>;
    await this.pump();
    return stored;
  }

  /**
   * Delivers everything stored after the last delivered id. Call it after a store write that
   * carried an event. Concurrent calls share drains, which run one at a time, so nothing is
   * delivered twice or out of order; the returned promise resolves once every event committed
   * before the call has been delivered.
   */
  pump(): Promise<void> {
    if (this.queued) return this.queued;
    const run = this.tail.then(() => {
      this.queued = undefined;
      return this.drain();
    });
    this.queued = run;
    this.tail = run.catch(() => {});
    return run;
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    const safe: EventListener = (event) => {
      try {
        listener(event);
      } catch {
        // a faulty subscriber must not break delivery
      }
    };
    this.emitter.on('event', safe);
    return () => this.emitter.off('event', safe);
  }

  /** Stored events after `afterId`, for resume. */
  history(opts: EventFilter): Promise<PreviewdEvent[]> {
    return this.store.listEvents(opts);
  }

  /** The last id handed to subscribers (the store's head before anything was). */
  get deliveredId(): number | undefined {
    return this.lastId;
  }

  /** Starts the poll timer (when `pollMs` > 0). */
  start(): void {
    if (this.pollMs === 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.pump().catch(this.onError);
    }, this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private readHead(): Promise<void> {
    if (this.lastId !== undefined) return Promise.resolve();
    this.headRead ??= this.store.lastEventId().then(
      (id) => {
        this.lastId ??= id;
      },
      (err: unknown) => {
        this.headRead = undefined;
        throw err;
      },
    );
    return this.headRead;
  }

  private async drain(): Promise<void> {
    await this.readHead();
    for (;;) {
      const page = await this.store.listEvents({ afterId: this.lastId, limit: PAGE });
      for (const event of page) {
        if (event.id <= (this.lastId ?? 0)) continue;
        this.lastId = event.id;
        this.emitter.emit('event', event);
      }
      if (page.length < PAGE) return;
    }
  }
}
