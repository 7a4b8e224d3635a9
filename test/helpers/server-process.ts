import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createDockerClient } from '../../src/providers/docker/client.js';
import { TEST_KEY, waitFor } from './server.js';

export const docker = createDockerClient({ docker: { network: 'previewd' } as never });

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `previewd serve` as a real child process, so it can be killed with SIGKILL and started again on the same data. */
export class ServerProcess {
  child?: ChildProcess;
  constructor(
    readonly dataDir: string,
    readonly port: number,
    public edgePort?: number,
    readonly env: Record<string, string> = {},
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get edgeUrl(): string {
    return `http://127.0.0.1:${this.edgePort}`;
  }
  async start(): Promise<void> {
    // Never the default 8080: several test files run at once.
    this.edgePort ??= await freePort();
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
      env: {
        ...process.env,
        PREVIEWD_DATA_DIR: this.dataDir,
        PREVIEWD_API_ADDR: `127.0.0.1:${this.port}`,
        PREVIEWD_EDGE_ADDR: `127.0.0.1:${this.edgePort}`,
        PREVIEWD_API_KEYS: TEST_KEY,
        PREVIEWD_LOG_LEVEL: 'warn',
        PREVIEWD_RECONCILE_INTERVAL_SEC: '1',
        PREVIEWD_ORPHAN_GRACE_SEC: '2',
        // As in startTestServer: on for users, off unless the suite is about dependency layers.
        PREVIEWD_DEPENDENCY_LAYERS: 'false',
        ...this.env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(
      async () => ((await fetch(`${this.url}/healthz`)).ok ? true : undefined),
      30_000,
      'server up',
    );
  }
  kill9(): void {
    this.child?.kill('SIGKILL');
  }
  /** A fresh process on the same data dir and ports. */
  restarted(): ServerProcess {
    return new ServerProcess(this.dataDir, this.port, this.edgePort, this.env);
  }
  async call(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return res.status === 204 ? undefined : res.json();
  }
}

/** The containers of the previewd whose data dir is `dataDir` (by their workspace mount). */
export async function instanceContainers(dataDir: string) {
  const all = await docker.listContainers({ all: true, filters: { label: ['previewd.managed=true'] } });
  return all.filter((c) => c.Mounts.some((m) => m.Source.startsWith(dataDir)));
}
