import type { EgressPolicy } from './egress.js';
import type { IsolationLevel } from './isolation.js';
import type { Resources, RuntimePlan } from './schemas.js';
import type { SandboxState } from './state-machine.js';

/** What the store keeps for a sandbox. The API view (SandboxView) is derived from it. */
/** The uid/gid a sandbox's processes and files have on the host (its own, see src/sandboxes/identity.ts). */
export interface SandboxIdentity {
  uid: number;
  gid: number;
}

/** The uid:gid every sandbox ran as before each got its own (the runtime images' `user`). */
export const LEGACY_IDENTITY: SandboxIdentity = Object.freeze({ uid: 1000, gid: 1000 });

export interface SandboxRecord {
  id: string;
  state: SandboxState;
  /** The node that manages it (runs its container, holds its files); `local` on a single host. */
  node?: string;
  image: string;
  /** Absent (rows made before isolation levels) means 'container'. */
  isolation?: IsolationLevel;
  /** Its own egress policy (create or PUT …/network); absent: its owner's or the host's default. */
  network?: EgressPolicy;
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
  /** Its own uid/gid, allocated at create; absent on rows made before (they run as 1000:1000). */
  identity?: SandboxIdentity;
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
