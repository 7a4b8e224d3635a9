/** One sample as the sampler keeps it (numbers only; the route renders `at` as an ISO time). */
export interface RawSample {
  /** Epoch milliseconds. */
  at: number;
  cpuPercent: number;
  memoryMb: number;
  diskMb: number;
  netRxBytes: number;
  netTxBytes: number;
}

const FIELDS = ['at', 'cpuPercent', 'memoryMb', 'diskMb', 'netRxBytes', 'netTxBytes'] as const;

/**
 * A bounded ring of samples, one Float64Array per field (48 bytes a sample): pushing past the
 * capacity overwrites the oldest. Samples are pushed in time order.
 */
export class SampleRing {
  private readonly columns: Float64Array[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity ${capacity}`);
    this.columns = FIELDS.map(() => new Float64Array(capacity));
  }

  get size(): number {
    return this.count;
  }

  push(sample: RawSample): void {
    const slot = (this.start + this.count) % this.capacity;
    FIELDS.forEach((field, i) => {
      (this.columns[i] as Float64Array)[slot] = sample[field];
    });
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** The newest sample, if any. */
  newest(): RawSample | undefined {
    return this.count === 0 ? undefined : this.at(this.count - 1);
  }

  /** Samples with `at` after `afterMs` (exclusive), oldest first. */
  after(afterMs: number): RawSample[] {
    // Binary search for the first sample after afterMs: samples are in time order.
    const ats = this.columns[0] as Float64Array;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((ats[(this.start + mid) % this.capacity] as number) > afterMs) hi = mid;
      else lo = mid + 1;
    }
    const out: RawSample[] = [];
    for (let i = lo; i < this.count; i++) out.push(this.at(i));
    return out;
  }

  private at(index: number): RawSample {
    const slot = (this.start + index) % this.capacity;
    const value = (i: number) => (this.columns[i] as Float64Array)[slot] as number;
    return {
      at: value(0),
      cpuPercent: value(1),
      memoryMb: value(2),
      diskMb: value(3),
      netRxBytes: value(4),
      netTxBytes: value(5),
    };
  }
}
