import type { AccessLogEntry } from './types';

export const statusClasses = ['2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof statusClasses)[number];

/** Requests of one minute, by status class (a WebSocket upgrade, 101, is counted with 2xx: it succeeded). */
export interface MinuteBucket {
  /** Start of the minute, ms since the epoch. */
  start: number;
  total: number;
  byClass: Record<StatusClass, number>;
}

export interface Traffic {
  minutes: MinuteBucket[];
  totals: Record<StatusClass, number>;
  total: number;
  /** The busiest minute's count (0 when none). */
  peak: number;
}

const MINUTE = 60_000;

export function statusClassOf(status: number): StatusClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return '2xx';
}

const zero = (): Record<StatusClass, number> => ({ '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 });

/**
 * The access log's last `minutes` minutes up to `now`, one bucket per clock minute (the current,
 * partial minute last). Entries outside the window are left out.
 */
export function trafficPerMinute(entries: readonly AccessLogEntry[], now: number, minutes = 60): Traffic {
  const last = Math.floor(now / MINUTE) * MINUTE;
  const first = last - (minutes - 1) * MINUTE;
  const buckets: MinuteBucket[] = Array.from({ length: minutes }, (_, i) => ({
    start: first + i * MINUTE,
    total: 0,
    byClass: zero(),
  }));
  const totals = zero();
  for (const entry of entries) {
    const at = Date.parse(entry.time);
    if (!(at >= first && at < last + MINUTE)) continue;
    const bucket = buckets[Math.floor((at - first) / MINUTE)];
    if (!bucket) continue;
    const cls = statusClassOf(entry.status);
    bucket.byClass[cls] += 1;
    bucket.total += 1;
    totals[cls] += 1;
  }
  const total = statusClasses.reduce((sum, cls) => sum + totals[cls], 0);
  return { minutes: buckets, totals, total, peak: Math.max(0, ...buckets.map((b) => b.total)) };
}
