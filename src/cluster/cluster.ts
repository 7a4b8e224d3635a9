import { hostname } from 'node:os';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { splitHostPort } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import { type Fence, LOCAL_NODE, NODE_ID_RE, type NodeRecord } from '../domain/node.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import type { SandboxState } from '../domain/state-machine.js';
import { containerMemoryMb, hostMemoryMb } from '../sandboxes/memory.js';
import type { Store } from '../store/store.js';
import { ApiForwarding } from './api-forwarding.js';
import { CreatePlacement } from './create-placement.js';
import { clusterSecret, nodeCredential } from './node-credential.js';
import { NodeDirectory } from './node-directory.js';
import { NodeLease } from './node-lease.js';
import { NodeWatch } from './node-watch.js';
import { SWARM_NODE_ID_LABEL, SwarmNodeSync, swarmMembership } from './swarm-nodes.js';

const LIVE: readonly SandboxState[] = ['creating', 'starting', 'running', 'paused'];

/** Who this node is to the rest of the system: the service stamps `id` on rows and carries `fence()` on writes. */
export interface NodeIdentity {
  id: string;
  /** Undefined outside a cluster; throws node_fenced when the lease has lapsed. */
  fence(): Fence | undefined;
}

export interface ClusterDeps {
  config: Config;
  store: Store;
  docker: Docker;
  log: Logger;
}

/** The node id: cluster.nodeId, else the host name; `local` outside a cluster. */
export function resolveNodeId(config: Config): string {
  if (!config.cluster.enabled) return config.cluster.nodeId ?? LOCAL_NODE;
  if (config.cluster.nodeId) return config.cluster.nodeId;
  const fromHost = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63);
  if (!NODE_ID_RE.test(fromHost)) {
    throw new PreviewdError('invalid_request', `the host name "${hostname()}" is no node id`, {
      hint: 'Set PREVIEWD_NODE_ID (lowercase letters, digits and dashes).',
    });
  }
  return fromHost;
}

function baseUrl(configured: string | undefined, addr: string, what: string, envName: string): string {
  if (configured) return configured.replace(/\/$/, '');
  const { host, port } = splitHostPort(addr);
  if (host === '0.0.0.0' || host === '::' || host === '') {
    throw new PreviewdError(
      'invalid_request',
      `the other nodes cannot reach this node's ${what} at ${addr}`,
      {
        hint: `Set ${envName} to the address the other nodes reach it at, e.g. http://198.51.100.11:${port}.`,
      },
    );
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * One node of a cluster (docs/scaling.md), or the single host when `cluster.enabled` is off: then
 * the node is `local`, nothing is leased and nothing is forwarded.
 */
export class ClusterNode {
  readonly self: string;
  readonly enabled: boolean;
  readonly credential?: string;
  readonly nodes?: NodeDirectory;
  readonly forwarding?: ApiForwarding;
  readonly placement: CreatePlacement;
  readonly identity: NodeIdentity;
  private readonly lease?: NodeLease;
  private readonly watch?: NodeWatch;
  private swarmSync?: SwarmNodeSync;
  private swarmTimer?: NodeJS.Timeout;
  private markLost?: (record: SandboxRecord, reason: string) => Promise<boolean>;
  private onReacquired?: () => void;

  constructor(private readonly deps: ClusterDeps) {
    const { config, store, log } = deps;
    this.self = resolveNodeId(config);
    this.enabled = config.cluster.enabled;
    if (this.enabled) {
      if (store.engine !== 'postgres') {
        throw new PreviewdError('invalid_request', 'a cluster needs the PostgreSQL store', {
          hint: 'Set PREVIEWD_DATABASE_URL=postgres://… on every node (SQLite is one host only).',
        });
      }
      this.credential = nodeCredential(clusterSecret(config));
      this.nodes = new NodeDirectory(store);
      this.forwarding = new ApiForwarding({
        self: this.self,
        store,
        nodes: this.nodes,
        credential: this.credential,
        timeoutMs: config.cluster.forwardTimeoutSec * 1000,
        log: log.child({ component: 'forwarding' }),
      });
      const apiUrl = baseUrl(config.cluster.apiUrl, config.apiAddr, 'API', 'PREVIEWD_NODE_API_URL');
      const edgeUrl = baseUrl(config.cluster.edgeUrl, config.edgeAddr, 'edge', 'PREVIEWD_NODE_EDGE_URL');
      const lease: NodeLease = new NodeLease({
        store,
        leaseMs: config.cluster.leaseTtlSec * 1000,
        heartbeatMs: config.cluster.heartbeatSec * 1000,
        log: log.child({ component: 'node-lease' }),
        describe: async () => ({
          id: this.self,
          apiUrl,
          edgeUrl,
          labels: await this.ownLabels(),
          capacity: this.capacity(),
          usage: await this.usage(),
        }),
        usage: () => this.usage(),
        onReacquired: () => this.onReacquired?.(),
      });
      this.lease = lease;
      this.watch = new NodeWatch({
        self: this.self,
        store,
        nodes: this.nodes,
        markLost: (record, reason) => this.markLost?.(record, reason) ?? Promise.resolve(false),
        log: log.child({ component: 'node-watch' }),
      });
    }
    const lease = this.lease;
    this.identity = {
      id: this.self,
      fence: () => lease?.fence(),
    };
    this.placement = new CreatePlacement({
      self: this.self,
      store,
      forwarding: this.forwarding,
      labels: () => config.cluster.labels,
      startMemoryMb: config.admission.startMemoryMb,
      retryAfterSec: config.admission.retryAfterSec,
      log: log.child({ component: 'placement' }),
    });
  }

  /** What a node may run: the admission budget. */
  capacity(): NodeRecord['capacity'] {
    const { admission } = this.deps.config;
    return {
      memoryMb: admission.memoryBudgetMb ?? Math.floor(hostMemoryMb() * 0.8),
      maxRunning: admission.maxRunning,
    };
  }

  /** What this node runs now: its live rows, each at its measured memory (or what a start counts as). */
  async usage(): Promise<NodeRecord['usage']> {
    const rows = await this.deps.store.listSandboxes({ node: this.self, states: LIVE });
    let memoryMb = 0;
    for (const row of rows) {
      const measured = row.containerId ? await containerMemoryMb(row.containerId) : undefined;
      memoryMb += measured ?? Math.min(row.resources.memoryMb, this.deps.config.admission.startMemoryMb);
    }
    return { running: rows.length, memoryMb: Math.round(memoryMb) };
  }

  private async ownLabels(): Promise<Record<string, string>> {
    const labels = { ...this.deps.config.cluster.labels };
    const membership = await this.membership();
    if (membership) labels[SWARM_NODE_ID_LABEL] = membership.nodeId;
    return labels;
  }

  private async membership() {
    if (this.deps.config.cluster.swarm === 'off') return undefined;
    const membership = await swarmMembership(this.deps.docker).catch(() => undefined);
    if (!membership && this.deps.config.cluster.swarm === 'on') {
      throw new PreviewdError('engine_unavailable', 'cluster.swarm is on, but the engine is in no Swarm', {
        hint: 'Join the engine to the Swarm (docker swarm join), or set PREVIEWD_CLUSTER_SWARM=auto.',
      });
    }
    return membership;
  }

  /**
   * Registers the node (a new epoch), then keeps its lease and watches the others'. `markLost`
   * marks a dead node's sandbox lost (SandboxService); `reconcile` runs after the node had to
   * register again.
   */
  async start(hooks: {
    markLost(record: SandboxRecord, reason: string): Promise<boolean>;
    reconcile(): void;
  }): Promise<void> {
    this.markLost = hooks.markLost;
    this.onReacquired = hooks.reconcile;
    if (!this.lease || !this.watch) return;
    await this.lease.start();
    const every = this.deps.config.cluster.heartbeatSec * 1000;
    this.watch.start(every);
    const membership = await this.membership();
    if (membership?.manager) {
      const sync = new SwarmNodeSync({
        docker: this.deps.docker,
        store: this.deps.store,
        log: this.deps.log.child({ component: 'swarm' }),
      });
      this.swarmSync = sync;
      const run = () =>
        void sync.runOnce().catch((err) => this.deps.log.warn({ err }, 'reading the Swarm nodes failed'));
      run();
      this.swarmTimer = setInterval(run, Math.max(every, 2000));
      this.swarmTimer.unref();
    }
  }

  /** The lease, the watch and the Swarm sync, for tests that drive them by hand. */
  get parts(): { lease?: NodeLease; watch?: NodeWatch; swarm?: SwarmNodeSync } {
    return { lease: this.lease, watch: this.watch, swarm: this.swarmSync };
  }

  /** The edge's view of the cluster (src/edge/edge-cluster.ts), when this node is in one. */
  edgeView():
    | { self: string; credential: string; edgeUrl(node: string): Promise<string | undefined> }
    | undefined {
    const nodes = this.nodes;
    if (!nodes || !this.credential) return undefined;
    return {
      self: this.self,
      credential: this.credential,
      edgeUrl: async (node) => (await nodes.live(node))?.edgeUrl,
    };
  }

  async stop(): Promise<void> {
    if (this.swarmTimer) clearInterval(this.swarmTimer);
    await this.watch?.stop();
    await this.lease?.stop();
  }
}
