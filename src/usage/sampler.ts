import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { type RawSample, SampleRing } from './sample-ring.js';
import type { UsageReading, UsageSource, UsageTarget } from './usage-source.js';

/** At most this many sandboxes are read at the same time in one pass. */
const PARALLEL_READS = 8;

interface Tracked {
  ring: SampleRing;
  /** The previous reading: the next sample's CPU is counted from it. */
  last?: { at: number; containerId: string; cpuNs: number };
}

export interface UsageSamplerDeps {
  source: UsageSource;
  /** This node's sandboxes to sample now (running or paused). */
  targets: () => Promise<UsageTarget[]>;
  clock: Clock;
  intervalSec: number;
  retentionSec: number;
  log?: Logger;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * Samples this node's own sandboxes every `intervalSec`: one read per sandbox per pass (no stream
 * per sandbox), the last `retentionSec` kept per sandbox in a ring buffer. CPU is the difference
 * of two readings of the same container over the time between them, so a sandbox's first sample
 * comes one interval after it is first seen (or its container restarted).
 */
export class UsageSampler {
  private readonly tracked = new Map<string, Tracked>();
  private readonly capacity: number;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  /** CPU time of the last pass, for the bench (process.cpuUsage of this process, microseconds). */
  lastPassCpuMicros = 0;

  constructor(private readonly deps: UsageSamplerDeps) {
    this.capacity = Math.ceil(deps.retentionSec / deps.intervalSec) + 1;
  }

  get intervalSec(): number {
    return this.deps.intervalSec;
  }

  get retentionSec(): number {
    return this.deps.retentionSec;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.pass) return; // the previous pass is still reading: skip this tick
      void this.sampleOnce().catch((err) => this.deps.log?.warn({ err }, 'usage sample pass failed'));
    }, this.deps.intervalSec * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.pass?.catch(() => undefined);
  }

  /** One pass over this node's sandboxes (the timer calls it; tests call it with a manual clock). */
  sampleOnce(): Promise<void> {
    if (this.pass) return this.pass;
    const pass = this.runPass().finally(() => {
      this.pass = undefined;
    });
    this.pass = pass;
    return pass;
  }

  /** Samples of a sandbox taken after `sinceMs` (exclusive) and within the retention, oldest first. */
  samples(sandboxId: string, sinceMs?: number): RawSample[] {
    const tracked = this.tracked.get(sandboxId);
    if (!tracked) return [];
    const oldest = this.deps.clock.now() - this.deps.retentionSec * 1000;
    return tracked.ring.after(Math.max(oldest - 1, sinceMs ?? Number.NEGATIVE_INFINITY));
  }

  /**
   * The newest sample of every sandbox sampled in the last two intervals (what Prometheus shows:
   * a stopped sandbox's last sample is not reported as its present).
   */
  current(): Map<string, RawSample> {
    const fresh = this.deps.clock.now() - 2 * this.deps.intervalSec * 1000 - 1;
    const out = new Map<string, RawSample>();
    for (const [id, tracked] of this.tracked) {
      const newest = tracked.ring.newest();
      if (newest && newest.at > fresh && tracked.last) out.set(id, newest);
    }
    return out;
  }

  /** The sandbox was deleted: its samples go with it. */
  forget(sandboxId: string): void {
    this.tracked.delete(sandboxId);
    this.deps.source.forget?.(sandboxId);
  }

  /** How many sandboxes have samples kept. */
  get trackedCount(): number {
    return this.tracked.size;
  }

  private async runPass(): Promise<void> {
    const cpuBefore = process.cpuUsage();
    const targets = await this.deps.targets();
    const seen = new Set(targets.map((t) => t.sandboxId));
    const queue = [...targets];
    const worker = async () => {
      for (let target = queue.shift(); target; target = queue.shift()) {
        const reading = await this.deps.source.read(target).catch((err) => {
          this.deps.log?.debug({ err, sandboxId: target?.sandboxId }, 'usage read failed');
          return undefined;
        });
        this.record(target, reading);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, queue.length) }, worker));
    this.settleUnseen(seen);
    const used = process.cpuUsage(cpuBefore);
    this.lastPassCpuMicros = used.user + used.system;
  }

  private record(target: UsageTarget, reading: UsageReading | undefined): void {
    let tracked = this.tracked.get(target.sandboxId);
    if (!reading) {
      if (tracked) tracked.last = undefined;
      return;
    }
    // Taken after the read: the interval ends when the counters were read.
    const at = this.deps.clock.now();
    if (!tracked) {
      tracked = { ring: new SampleRing(this.capacity) };
      this.tracked.set(target.sandboxId, tracked);
    }
    const last = tracked.last;
    tracked.last = { at, containerId: target.containerId, cpuNs: reading.cpuNs };
    // A new container (restart) or counters that went back: this reading is the next baseline.
    if (!last || last.containerId !== target.containerId || reading.cpuNs < last.cpuNs || at <= last.at)
      return;
    const cpuPercent = ((reading.cpuNs - last.cpuNs) / ((at - last.at) * 1e6)) * 100;
    tracked.ring.push({
      at,
      cpuPercent: round1(cpuPercent),
      memoryMb: round1(reading.memoryMb),
      diskMb: round1(reading.diskMb),
      netRxBytes: Math.round(reading.netRxBytes),
      netTxBytes: Math.round(reading.netTxBytes),
    });
  }

  /**
   * Sandboxes not running now keep their samples (the last hour of a stopped sandbox still
   * shows) without a baseline; once their newest sample is past the retention they are dropped.
   */
  private settleUnseen(seen: Set<string>): void {
    const oldest = this.deps.clock.now() - this.deps.retentionSec * 1000;
    for (const [id, tracked] of this.tracked) {
      if (seen.has(id)) continue;
      tracked.last = undefined;
      const newest = tracked.ring.newest();
      if (!newest || newest.at <= oldest) this.forget(id);
    }
  }
}
