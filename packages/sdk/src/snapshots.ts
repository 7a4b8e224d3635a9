import type { Http } from './http.js';

/** A runtime plan as the API shows it (what a sandbox made from the snapshot runs). */
export interface SnapshotRuntime {
  image: string;
  install?: string;
  start?: string;
  port?: number;
  env: Record<string, string>;
  source: 'overrides' | 'detected' | 'template' | 'none';
  framework?: string;
  packageManager?: 'npm' | 'pnpm' | 'yarn' | 'pip';
}

/** A snapshot: a sandbox's files frozen as a read-only layer, with its runtime plan (not its memory). */
export interface Snapshot {
  id: string;
  /** The sandbox it was taken of (which may be gone since). */
  sandboxId: string;
  name?: string;
  labels: Record<string, string>;
  owner?: string;
  /** The node that keeps its layers; sandboxes made from it are placed there. */
  node: string;
  runtime: SnapshotRuntime;
  image: string;
  /** Size of the frozen writable layer, MB rounded up. */
  sizeMb: number;
  createdAt: string;
}

export interface SnapshotList {
  snapshots: Snapshot[];
  nextCursor: string | null;
}

export interface CreateSnapshotRequest {
  name?: string;
  labels?: Record<string, string>;
}

export interface ListSnapshotsOptions {
  /** Only snapshots of this sandbox. */
  sandboxId?: string;
  limit?: number;
  cursor?: string;
}

const path = (id: string) => `/v1/snapshots/${encodeURIComponent(id)}`;

/**
 * The caller's snapshots (docs/snapshots.md). Take one with `sandbox.snapshot()`, start a sandbox
 * from one with `sandboxes.create({ snapshot: id })`. Another owner's answers SnapshotNotFound.
 */
export class Snapshots {
  constructor(private readonly http: Http) {}

  list(opts: ListSnapshotsOptions = {}): Promise<SnapshotList> {
    return this.http.json('GET', '/v1/snapshots', { query: { ...opts } });
  }

  get(id: string): Promise<Snapshot> {
    return this.http.json('GET', path(id));
  }

  /** Removes it at once; its layer is freed once no sandbox made from it remains. */
  delete(id: string): Promise<Snapshot> {
    return this.http.json('DELETE', path(id));
  }
}
