export { type ListOptions, Previewd, type PreviewdOptions, Sandboxes } from './client.js';
export * from './errors.js';
export { type FileContent, SandboxFiles } from './files.js';
export type * from './generated/api-types.js';
export { Http, OWNER_HEADER, type QueryValue, type RequestOptions } from './http.js';
export { Keys } from './keys.js';
export type { MetricsOptions, SandboxMetrics, UsageSample } from './metrics.js';
export { type ClusterNode, Nodes } from './nodes.js';
export { Pool } from './pool.js';
export {
  type Command,
  type ExecOptions,
  type ExecStreamItem,
  type ForkRequest,
  type OutputChunk,
  type PreviewdEvent,
  Sandbox,
  SandboxProcesses,
  type SandboxState,
  type WaitOptions,
} from './sandbox.js';
export {
  type CreateSnapshotRequest,
  type ListSnapshotsOptions,
  type Snapshot,
  type SnapshotList,
  type SnapshotRuntime,
  Snapshots,
} from './snapshots.js';
export { readLines, readNdjson, readSse, type SseMessage } from './streams.js';
export {
  Terminal,
  type TerminalAuth,
  type TerminalOptions,
  type TerminalOutput,
  type WebSocketConstructor,
  type WebSocketLike,
} from './terminal.js';
export {
  type CreatedWebhook,
  type CreateWebhookRequest,
  type DeliveriesOptions,
  type Webhook,
  type WebhookDelivery,
  type WebhookDeliveryList,
  Webhooks,
} from './webhooks.js';
