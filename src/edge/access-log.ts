/** One request seen by the edge. */
export interface AccessEntry {
  time: string;
  method: string;
  path: string;
  port: number;
  status: number;
  bytes: number;
  durationMs: number;
  websocket: boolean;
}

/** As recorded on the hot path: the time stays a number until someone reads the log. */
export interface AccessRecord {
  timeMs: number;
  method: string;
  path: string;
  port: number;
  status: number;
  bytes: number;
  durationMs: number;
  websocket: boolean;
}

/** A bounded ring buffer per sandbox: recent requests, oldest dropped first. Memory only. */
export class AccessLog {
  private readonly rings = new Map<string, { entries: AccessRecord[]; next: number }>();

  constructor(private readonly size: number) {}

  record(sandboxId: string, entry: AccessRecord): void {
    if (this.size === 0) return;
    let ring = this.rings.get(sandboxId);
    if (!ring) {
      ring = { entries: [], next: 0 };
      this.rings.set(sandboxId, ring);
    }
    if (ring.entries.length < this.size) ring.entries.push(entry);
    else ring.entries[ring.next] = entry;
    ring.next = (ring.next + 1) % this.size;
  }

  /** Newest first. */
  recent(sandboxId: string, limit = 100): AccessEntry[] {
    const ring = this.rings.get(sandboxId);
    if (!ring) return [];
    const out: AccessEntry[] = [];
    const n = ring.entries.length;
    for (let i = 1; i <= Math.min(limit, n); i++) {
      const { timeMs, ...rest } = ring.entries[(ring.next - i + n) % n]!;
      out.push({ time: new Date(timeMs).toISOString(), ...rest });
    }
    return out;
  }

  forget(sandboxId: string): void {
    this.rings.delete(sandboxId);
  }
}
