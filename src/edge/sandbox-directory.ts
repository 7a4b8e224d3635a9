import { LOCAL_NODE } from '../domain/node.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';
import type { AppStatus, InstanceInfo, SandboxProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';
import { lastLines } from './app-logs.js';

/** A container's status as its engine reports it. */
export type SandboxInstance = InstanceInfo;
/** What the app supervisor reports (runtime/supervisor.sh). */
export type SandboxAppStatus = AppStatus;

/** What the edge knows of a sandbox from its row: enough to route, check a token and forward. */
export interface SandboxEntry {
  id: string;
  state: SandboxState;
  /** The node that manages it (`local` when the row names none). */
  node: string;
  ports: readonly number[];
  visibility: 'public' | 'private';
  owner?: string;
  /** Preview tokens issued before this instant (ISO) are revoked. */
  previewTokensValidAfter?: string;
  error?: { code: string; message: string };
}

/**
 * The one thing the edge asks about sandboxes (never the provider): their rows, and about the
 * ones this node runs, where a port answers, the container's status, the app supervisor's report
 * and the last log lines. A cluster gives the edge a directory whose rows name every node's
 * sandboxes; the edge forwards a request for another node's sandbox to that node (edge-cluster.ts)
 * and asks the rest only about its own.
 */
export interface SandboxDirectory {
  /** The sandbox's row; undefined when there is none (or it is deleted). */
  lookup(id: string): Promise<SandboxEntry | undefined>;
  /** Where `port` of a running sandbox answers. Throws port_not_exposed, or while it has no address. */
  address(id: string, port: number): Promise<{ host: string; port: number }>;
  /** The container's status (running, exited with its code, missing…). */
  instance(id: string): Promise<SandboxInstance>;
  /** What the app supervisor reports; undefined when there is no report (or no supervisor). */
  appStatus(id: string): Promise<SandboxAppStatus | undefined>;
  /** The last `n` lines the app wrote; empty when there are none or they cannot be read. */
  lastLogLines(id: string, n: number): Promise<string[]>;
}

/** Most log lines a page shows. */
const MAX_LOG_LINES = 200;

export function toSandboxEntry(record: SandboxRecord): SandboxEntry {
  return {
    id: record.id,
    state: record.state,
    node: record.node ?? LOCAL_NODE,
    ports: record.ports,
    visibility: record.visibility,
    owner: record.owner,
    previewTokensValidAfter: record.previewTokensValidAfter,
    error: record.error,
  };
}

/** The directory of one node: rows from its store, the rest from its own engine (the provider). */
export class LocalSandboxDirectory implements SandboxDirectory {
  constructor(private readonly deps: { store: Store; provider: SandboxProvider }) {}

  async lookup(id: string): Promise<SandboxEntry | undefined> {
    const record = await this.deps.store.getSandbox(id);
    return record ? toSandboxEntry(record) : undefined;
  }

  address(id: string, port: number): Promise<{ host: string; port: number }> {
    return this.deps.provider.address(id, port);
  }

  instance(id: string): Promise<SandboxInstance> {
    return this.deps.provider.inspect(id);
  }

  async appStatus(id: string): Promise<SandboxAppStatus | undefined> {
    const { provider } = this.deps;
    if (!provider.appStatus) return undefined;
    return provider.appStatus(id).catch(() => undefined);
  }

  async lastLogLines(id: string, n: number): Promise<string[]> {
    const tail = Math.max(1, Math.min(MAX_LOG_LINES, Math.floor(n)));
    try {
      return await lastLines(await this.deps.provider.logs(id, { tail }), tail);
    } catch {
      return [];
    }
  }
}
