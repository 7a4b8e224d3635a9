/** The shapes the dashboard reads from the API (see docs/api.md). */

export type SandboxState =
  | 'creating'
  | 'starting'
  | 'running'
  | 'paused'
  | 'stopping'
  | 'stopped'
  | 'error'
  | 'deleted';

export const sandboxStates: readonly SandboxState[] = [
  'creating',
  'starting',
  'running',
  'paused',
  'stopping',
  'stopped',
  'error',
];

export interface Preview {
  port: number;
  url: string;
}

export interface Sandbox {
  id: string;
  state: SandboxState;
  image: string;
  template?: string;
  runtime: { image: string; framework?: string; source: string; port?: number; packageManager?: string };
  ports: number[];
  previews: Preview[];
  visibility: 'public' | 'private';
  owner?: string;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  stoppedAt?: string;
  lastActivityAt: string;
  keepAliveUntil?: string;
  expiresAt?: string;
  error?: { code: string; message: string };
  labels: Record<string, string>;
}

export interface Template {
  name: string;
  dependencies: 'npm' | 'image';
  warm: boolean;
}

export interface FileEntry {
  path: string;
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: string;
  mtime: string;
  target?: string;
}

export interface AccessLogEntry {
  time: string;
  method: string;
  path: string;
  port: number;
  status: number;
  bytes: number;
  durationMs: number;
  websocket: boolean;
}

/** One event of `/v1/events` or `/v1/sandboxes/:id/events`. */
export interface PreviewdEvent {
  id: number;
  type: string;
  sandboxId?: string;
  at: string;
  data: Record<string, unknown>;
}
