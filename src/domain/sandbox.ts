import type { Resources, RuntimePlan } from './schemas.js';
import type { SandboxState } from './state-machine.js';

/** What the store keeps for a sandbox. The API view (SandboxView) is derived from it. */
export interface SandboxRecord {
  id: string;
  state: SandboxState;
  image: string;
  template?: string;
  runtime: RuntimePlan;
  ports: number[];
  env: Record<string, string>;
  resources: Resources;
  visibility: 'public' | 'private';
  idleTimeoutSec: number;
  pauseAfterSec: number;
  ttlSec?: number;
  /** Absent means 'auto'. */
  idlePolicy?: 'auto' | 'always_on';
  preStop?: { cmd: string | string[]; timeoutSec?: number };
  owner?: string;
  metadata: Record<string, unknown>;
  labels: Record<string, string>;
  error?: { code: string; message: string };
  /** Engine-side id of the container, once created. */
  containerId?: string;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  stoppedAt?: string;
  /** Set when previewd stopped it on its own (idle reaper, capacity admission): an exec wakes it. */
  stopReason?: 'idle' | 'capacity' | 'expired' | 'engine';
  lastActivityAt: string;
  keepAliveUntil?: string;
  expiresAt?: string;
  deletedAt?: string;
  /** Preview tokens issued before this instant are revoked. */
  previewTokensValidAfter?: string;
}

export type SandboxPatch = Partial<Omit<SandboxRecord, 'id' | 'createdAt'>>;

export function nowIso(): string {
  return new Date().toISOString();
}
