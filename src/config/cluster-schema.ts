import { z } from 'zod';
import { NODE_ID_RE } from '../domain/node.js';

const url = z
  .string()
  .regex(/^https?:\/\/[^\s/]+\/?$/, 'must be a base URL such as http://198.51.100.11:7070');

/**
 * The store engine and the cluster (docs/scaling.md). Without `databaseUrl` previewd keeps its
 * state in SQLite under dataDir; with it, in PostgreSQL, which several nodes may share.
 */
export const storeConfigSchema = {
  /** `postgres://user:pass@host:port/db`: the PostgreSQL store (node-postgres); absent: SQLite. */
  databaseUrl: z
    .string()
    .regex(
      /^postgres(ql)?:\/\/\S+$/,
      'must be a postgres:// URL, e.g. postgres://previewd@127.0.0.1:5432/previewd',
    )
    .optional(),
  cluster: z
    .strictObject({
      /** Join a cluster: register this node with a lease, place and forward (needs databaseUrl). */
      enabled: z.boolean().default(false),
      /** This node's id; default: the host name (lowercased), `local` outside a cluster. */
      nodeId: z
        .string()
        .regex(NODE_ID_RE, 'must be lowercase letters, digits and dashes (at most 63)')
        .optional(),
      /** How the other nodes reach this node's API; default: http://<apiAddr>. */
      apiUrl: url.optional(),
      /** How the other nodes reach this node's built-in edge; default: its listen address. */
      edgeUrl: url.optional(),
      /** The node-to-node credential (the same on every node; at least 32 characters). */
      secret: z.string().min(32, 'cluster.secret must be at least 32 characters').optional(),
      /** A file holding the node-to-node credential (a Swarm secret, say). */
      secretFile: z.string().min(1).optional(),
      /** A node whose lease is this old is taken for dead: fenced off, its sandboxes marked lost. */
      leaseTtlSec: z.number().min(2).max(600).default(10),
      /** How often the node renews its lease and reports its usage. */
      heartbeatSec: z.number().positive().max(60).default(2),
      /** Placement labels of this node (merged under the Swarm's node labels). */
      labels: z.record(z.string().min(1).max(128), z.string().max(256)).default({}),
      /** Read node labels and liveness from the Docker Swarm the engine belongs to. */
      swarm: z.enum(['auto', 'on', 'off']).default('auto'),
      /** How long a forwarded API call or preview may take to get its answer's head. */
      forwardTimeoutSec: z.number().positive().max(3600).default(60),
    })
    .prefault({}),
};

export const storeEnvVars = {
  PREVIEWD_DATABASE_URL: { path: ['databaseUrl'], kind: 'str' },
  PREVIEWD_CLUSTER: { path: ['cluster', 'enabled'], kind: 'bool' },
  PREVIEWD_NODE_ID: { path: ['cluster', 'nodeId'], kind: 'str' },
  PREVIEWD_NODE_API_URL: { path: ['cluster', 'apiUrl'], kind: 'str' },
  PREVIEWD_NODE_EDGE_URL: { path: ['cluster', 'edgeUrl'], kind: 'str' },
  PREVIEWD_CLUSTER_SECRET: { path: ['cluster', 'secret'], kind: 'str' },
  PREVIEWD_CLUSTER_SECRET_FILE: { path: ['cluster', 'secretFile'], kind: 'str' },
  PREVIEWD_CLUSTER_LEASE_TTL_SEC: { path: ['cluster', 'leaseTtlSec'], kind: 'num' },
  PREVIEWD_CLUSTER_HEARTBEAT_SEC: { path: ['cluster', 'heartbeatSec'], kind: 'num' },
  PREVIEWD_CLUSTER_SWARM: { path: ['cluster', 'swarm'], kind: 'str' },
} as const;
