import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import type { ClusterHost } from './cluster-hosts.js';
import { releaseMounts } from './mounts.js';
import { TEST_KEY, waitFor } from './server.js';

export const CLUSTER_SECRET = 'cluster-secret-for-tests-0123456789abcdef';
export const NODE_API_PORT = 7070;
export const NODE_EDGE_PORT = 8080;

export interface NodeOptions {
  databaseUrl: string;
  /** Lease TTL and heartbeat of the node (seconds). */
  leaseTtlSec?: number;
  heartbeatSec?: number;
  env?: Record<string, string>;
}

/**
 * One previewd node (`previewd serve` in cluster mode) inside a test host's network namespace,
 * talking to that host's engine; the others reach it at the host's address.
 */
export class PreviewdNode {
  child?: ChildProcess;
  readonly dataDir: string;
  private exited?: Promise<void>;
  /** The node's log lines (JSON, warn and up), the last 2000. */
  readonly logLines: string[] = [];

  constructor(
    readonly host: ClusterHost,
    readonly opts: NodeOptions,
    root: string,
  ) {
    this.dataDir = join(root, `node-${host.name}`);
  }

  get id(): string {
    return this.host.name;
  }
  get apiUrl(): string {
    return `http://${this.host.address}:${NODE_API_PORT}`;
  }
  get edgeUrl(): string {
    return `http://${this.host.address}:${NODE_EDGE_PORT}`;
  }

  env(): Record<string, string> {
    const o = this.opts;
    return {
      ...(process.env as Record<string, string>),
      PREVIEWD_DATA_DIR: this.dataDir,
      PREVIEWD_DOCKER_SOCKET: this.host.dockerSocket,
      PREVIEWD_API_ADDR: `0.0.0.0:${NODE_API_PORT}`,
      PREVIEWD_EDGE_ADDR: `0.0.0.0:${NODE_EDGE_PORT}`,
      PREVIEWD_EDGE_PUBLIC_PORT: String(NODE_EDGE_PORT),
      PREVIEWD_API_HOSTS: this.host.address,
      PREVIEWD_API_KEYS: TEST_KEY,
      PREVIEWD_LOG_LEVEL: 'warn',
      PREVIEWD_LOG_FORMAT: 'json',
      PREVIEWD_DATABASE_URL: o.databaseUrl,
      PREVIEWD_CLUSTER: 'true',
      PREVIEWD_NODE_ID: this.host.name,
      PREVIEWD_NODE_API_URL: this.apiUrl,
      PREVIEWD_NODE_EDGE_URL: this.edgeUrl,
      PREVIEWD_CLUSTER_SECRET: CLUSTER_SECRET,
      PREVIEWD_CLUSTER_LEASE_TTL_SEC: String(o.leaseTtlSec ?? 4),
      PREVIEWD_CLUSTER_HEARTBEAT_SEC: String(o.heartbeatSec ?? 1),
      PREVIEWD_RECONCILE_INTERVAL_SEC: '1',
      PREVIEWD_ORPHAN_GRACE_SEC: '30',
      // No gVisor runtime is registered in the test engines.
      PREVIEWD_ISOLATION: 'container',
      ...o.env,
    };
  }

  async start(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    const child = this.host.spawnInNetns(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
      env: this.env(),
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let partial = '';
    const onData = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.logLines.push(line);
        if (this.logLines.length > 2000) this.logLines.shift();
        if (process.env.PREVIEWD_TEST_NODE_LOGS) process.stderr.write(`[${this.id}] ${line}\n`);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`node ${this.id} exited with ${child.exitCode}`);
        const res = await request(`${this.apiUrl}/healthz`).catch(() => undefined);
        await res?.body.dump();
        return res?.statusCode === 200 ? true : undefined;
      },
      60_000,
      `node ${this.id} up`,
    );
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const done = await Promise.race([
      this.exited?.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
    ]);
    if (!done) await this.kill();
  }

  /** Unmounts what the node left (sandbox disks and overlays), then removes its data folder. */
  async remove(): Promise<void> {
    await releaseMounts(this.dataDir);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** An API call with the test's admin key. */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await request(`${this.apiUrl}${path}`, {
      method: method as 'GET',
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.body.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.statusCode, headers: res.headers, body: json };
  }

  /** A preview request entering this node's edge (the Host names the sandbox and port). */
  async preview(id: string, port: number, path = '/', headers: Record<string, string> = {}) {
    const res = await request(`${this.edgeUrl}${path}`, {
      headers: {
        host: `${port}-${id}.preview.localhost:${NODE_EDGE_PORT}`,
        accept: 'text/plain',
        ...headers,
      },
    });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  }
}
