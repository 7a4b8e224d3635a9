import { type Clock, systemClock } from '../domain/clock.js';
import type { SandboxRecord } from '../domain/sandbox.js';

/** What the edge and the API know about a sandbox's use right now (the edge's ActivityTracker). */
export interface ActivitySignals {
  lastSeen(sandboxId: string): number | undefined;
  busy(sandboxId: string): boolean;
}

/** Background processes of a sandbox (ProcessRegistry). */
export interface ProcessSignals {
  list(sandboxId: string): { running: boolean }[];
}

/**
 * Whether a sandbox is in use: the one answer the idle reaper and capacity admission share.
 * Activity is the latest of the stored `lastActivityAt` and what this process saw since its last
 * batched write; running work is an exec in flight, an open WebSocket (when they count) or a
 * background process that has not ended.
 */
export class SandboxUsage {
  constructor(
    private readonly activity: ActivitySignals,
    private readonly processes: ProcessSignals,
    /** The time idle tiers, keepalive and admission are decided at. */
    readonly clock: Clock = systemClock,
  ) {}

  /** Last activity (ms since the epoch). */
  lastActive(record: SandboxRecord): number {
    const stored = Date.parse(record.lastActivityAt) || 0;
    return Math.max(stored, this.activity.lastSeen(record.id) ?? 0);
  }

  hasRunningWork(sandboxId: string): boolean {
    return this.activity.busy(sandboxId) || this.processes.list(sandboxId).some((p) => p.running);
  }

  keptAwake(record: SandboxRecord, now = this.clock.now()): boolean {
    return record.keepAliveUntil !== undefined && Date.parse(record.keepAliveUntil) > now;
  }
}
