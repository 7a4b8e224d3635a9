import type { CreateSnapshotRequest, Snapshot, SnapshotList } from './generated/api-types.js';
import type { Http } from './http.js';

export type { CreateSnapshotRequest, Snapshot, SnapshotList };

/** A snapshot's runtime plan (what a sandbox made from it runs); types generated from the server. */
export type SnapshotRuntime = Snapshot['runtime'];

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
