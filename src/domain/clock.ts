/** Where lifecycle decisions read the time (idle tiers, keepalive, ttl, admission, orphan grace). */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** The time as an ISO string, as rows store it. */
export function isoAt(clock: Clock, offsetMs = 0): string {
  return new Date(clock.now() + offsetMs).toISOString();
}

/** A clock that moves only when told (tests: lifecycle rules without sleeps). */
export class ManualClock implements Clock {
  private at: number;

  constructor(start: number | string = Date.parse('2026-01-01T00:00:00Z')) {
    this.at = typeof start === 'string' ? Date.parse(start) : start;
  }

  now(): number {
    return this.at;
  }

  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a clock moves forward only (${ms})`);
    this.at += ms;
    return this.at;
  }
}
