import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { splitHostPort } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import { type FrontRouteAccess, frontKeyMap, frontRouteValue } from './front-access.js';
import { FRONT_INFLIGHT_TABLE, type FrontBind, renderFrontConfig } from './front-config.js';
import { frontErrorResponses } from './front-errors.js';
import { type FrontLogEntry, FrontLogReader } from './front-log.js';
import { FrontRuntimeApi } from './front-runtime.js';
import { defaultKeyFile, loadSigningKeys, type SigningKey } from './preview-tokens.js';

export interface FrontProxyDeps {
  config: Config;
  log: Logger;
  /** The built-in edge's loopback listener, where everything but fast routes goes. */
  builtin: FrontBind;
  /** Each request the front sent straight to a sandbox. */
  onEntry: (entry: FrontLogEntry) => void;
  /** The preview-token keys the front verifies private routes' tokens with (default: the key file). */
  tokenKeys?: SigningKey[];
}

const SETPRIV = '/usr/bin/setpriv';

/** Whether the configured HAProxy binary runs here. */
export function haproxyAvailable(bin: string): boolean {
  const probe = spawnSync(bin, ['-v'], { stdio: 'ignore', timeout: 5000 });
  return probe.status === 0;
}

/** A free TCP port on `host` (for a configured port 0: HAProxy cannot report what it bound). */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function resolveBind(addr: string): Promise<FrontBind> {
  const { host, port } = splitHostPort(addr);
  return { host, port: port === 0 ? await freePort(host) : port };
}

function urlOf(scheme: string, bind: FrontBind): string {
  return `${scheme}://${bind.host.includes(':') ? `[${bind.host}]` : bind.host}:${bind.port}`;
}

/** Writes a file only its owner may read or write (also when it existed with a wider mode). */
function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * HAProxy in front of the built-in edge: the data plane for running previews (private ones with a
 * token HAProxy verifies itself, front-access.ts). previewd
 * starts it with a static configuration (front-config.ts), keeps it alive (restarted with backoff
 * if it exits) and steers it through the runtime API: a route is published once the built-in edge
 * has reached the app on it, and withdrawn before the sandbox sleeps, when its state, ports or
 * visibility change, and when HAProxy reports the app unreachable. HAProxy's per-request log lines
 * come back on its stdout and feed the access log, metrics and activity.
 */
export class FrontProxy {
  /** host → `ip:port`, as HAProxy has it (or will, once queued commands ran). */
  private readonly published = new Map<string, { sandboxId: string; value: string }>();
  private readonly bySandbox = new Map<string, Set<string>>();
  private readonly dir: string;
  private readonly cfgFile: string;
  private readonly mapFile: string;
  private readonly keysFile: string;
  private readonly socketPath: string;
  private readonly pidFile: string;
  private readonly api: FrontRuntimeApi;
  private child?: ChildProcess;
  private stopping = false;
  private restartDelayMs = 250;
  private restartTimer?: NodeJS.Timeout;
  url?: string;
  tlsUrl?: string;

  constructor(private readonly deps: FrontProxyDeps) {
    const runDir = join(deps.config.dataDir, 'run', 'front');
    // A UNIX socket path has at most 107 bytes.
    this.dir = runDir.length < 80 ? runDir : mkdtempSync(join(tmpdir(), 'previewd-front-'));
    this.cfgFile = join(this.dir, 'haproxy.cfg');
    this.mapFile = join(this.dir, 'fast-routes.map');
    this.keysFile = join(this.dir, 'preview-keys.map');
    this.socketPath = join(this.dir, 'haproxy.sock');
    this.pidFile = join(this.dir, 'haproxy.pid');
    this.api = new FrontRuntimeApi(this.socketPath);
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const keys =
      this.deps.tokenKeys ?? loadSigningKeys(config.edge.tokenSecretFile ?? defaultKeyFile(config.dataDir));
    // The secrets stay in files only previewd's user reads (HAProxy runs as that user).
    writePrivate(this.keysFile, frontKeyMap(keys));
    const plain = await resolveBind(config.edgeAddr);
    let tls: (FrontBind & { pemFile: string }) | undefined;
    if (config.edge.tls) {
      const pemFile = join(this.dir, 'edge-tls.pem');
      const cert = readFileSync(config.edge.tls.certFile, 'utf8');
      const key = readFileSync(config.edge.tls.keyFile, 'utf8');
      writePrivate(pemFile, `${cert.trimEnd()}\n${key.trimEnd()}\n`);
      tls = { ...(await resolveBind(config.edge.tls.addr)), pemFile };
      this.tlsUrl = urlOf('https', tls);
    }
    const errorFiles: Record<number, string> = {};
    for (const [status, response] of Object.entries(frontErrorResponses())) {
      errorFiles[Number(status)] = join(this.dir, `error-${status}.http`);
      writeFileSync(errorFiles[Number(status)]!, response);
    }
    const text = renderFrontConfig({
      errorFiles,
      plain,
      tls,
      httpsRedirect: config.edge.httpsRedirect,
      builtin: this.deps.builtin,
      socketPath: this.socketPath,
      mapFile: this.mapFile,
      keysFile: this.keysFile,
      threads: config.edge.frontThreads,
      logRate: config.edge.frontLogRate,
    });
    writePrivate(this.cfgFile, text);
    this.url = urlOf('http', plain);
    await this.spawn();
  }

  private writeMapFile(): void {
    const lines = [...this.published].map(([host, { value }]) => `${host} ${value}\n`);
    writePrivate(this.mapFile, lines.join(''));
  }

  /**
   * An HAProxy left by a previous previewd of this data dir that was killed (SIGKILL gives no
   * chance to stop it) still holds the edge's address: it is stopped first.
   */
  private async stopLeftover(): Promise<void> {
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      if (!pid || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.cfgFile)) return;
    } catch {
      return;
    }
    this.deps.log.warn({ pid }, 'front: stopping an HAProxy left by a previous run');
    // Its parent is gone, so it ends as a zombie nobody may reap: that counts as stopped.
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 40 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    if (alive()) process.kill(pid, 'SIGKILL');
  }

  private async spawn(): Promise<void> {
    await this.stopLeftover();
    this.writeMapFile();
    // With util-linux's setpriv, HAProxy gets SIGTERM when previewd dies, even by SIGKILL.
    const [cmd, args] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'TERM', '--', this.deps.config.edge.haproxyBin, '-db', '-f', this.cfgFile]]
      : [this.deps.config.edge.haproxyBin, ['-db', '-f', this.cfgFile]];
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.stopping) {
      // stop() came while a restart was on its way.
      child.kill('SIGTERM');
      return;
    }
    this.child = child;
    if (child.pid) writeFileSync(this.pidFile, String(child.pid));
    const reader = new FrontLogReader(this.deps.onEntry);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => reader.push(chunk));
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
      for (const line of chunk.split('\n')) {
        if (/\[(ALERT|WARNING)\]/.test(line)) this.deps.log.warn({ haproxy: line.trim() }, 'front');
      }
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('error', (err) => {
        stderr += `\n${err.message}`;
        resolve(null);
      });
      child.once('exit', (code) => resolve(code));
    });
    exited.then((code) => {
      if (this.child !== child || this.stopping) return;
      this.deps.log.error({ code, stderr: stderr.trim().split('\n').slice(-5) }, 'front: HAProxy exited');
      this.child = undefined;
      this.scheduleRestart();
    });
    const ready = await Promise.race([this.waitReady(), exited.then(() => false)]);
    if (!ready) {
      child.kill('SIGKILL');
      this.child = undefined;
      throw new PreviewdError(
        'internal',
        `HAProxy (the edge's front) did not start: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`,
        {
          hint: 'Check that the edge address is free and that the HAProxy binary works (edge.haproxyBin), or set PREVIEWD_EDGE_FRONT=off to serve previews from the built-in edge alone.',
        },
      );
    }
    this.restartDelayMs = 250;
  }

  private async waitReady(): Promise<boolean> {
    for (let i = 0; i < 200; i++) {
      const info = await this.api.command('show info').catch(() => '');
      if (info.includes('Pid:')) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(30_000, delay * 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawn().catch((err: Error) => {
        this.deps.log.error({ err: err.message }, 'front: HAProxy restart failed');
        this.scheduleRestart();
      });
    }, delay);
  }

  /**
   * Routes `host` straight to `upstream` (idempotent). With `access` (a private route), only
   * requests carrying a valid token for it (front-access.ts); the rest still reach the built-in edge.
   */
  publish(
    sandboxId: string,
    host: string,
    upstream: { host: string; port: number },
    access?: FrontRouteAccess,
  ): void {
    const value = frontRouteValue(upstream, access);
    const key = host.toLowerCase();
    if (this.published.get(key)?.value === value) return;
    this.published.set(key, { sandboxId, value });
    const hosts = this.bySandbox.get(sandboxId) ?? new Set<string>();
    this.bySandbox.set(sandboxId, hosts);
    hosts.add(key);
    this.api.setMapEntry(this.mapFile, key, value).catch((err: Error) => {
      this.deps.log.warn({ err: err.message, host: key }, 'front: route not published');
      this.forget(key);
    });
  }

  /** Sends every host of the sandbox back through the built-in edge; resolves once HAProxy has it. */
  async withdraw(sandboxId: string): Promise<void> {
    const hosts = this.bySandbox.get(sandboxId);
    if (!hosts) return;
    await Promise.all([...hosts].map((host) => this.withdrawHost(host)));
  }

  async withdrawHost(host: string): Promise<void> {
    if (!this.forget(host)) return;
    await this.api.deleteMapEntry(this.mapFile, host).catch((err: Error) => {
      this.deps.log.warn({ err: err.message, host }, 'front: route not withdrawn');
    });
  }

  private forget(host: string): boolean {
    const entry = this.published.get(host);
    if (!entry) return false;
    this.published.delete(host);
    const hosts = this.bySandbox.get(entry.sandboxId);
    hosts?.delete(host);
    if (hosts?.size === 0) this.bySandbox.delete(entry.sandboxId);
    return true;
  }

  /** Resolves once HAProxy has applied every route change made so far. */
  settled(): Promise<void> {
    return this.api.idle();
  }

  /** Whether `host` is routed by the front right now (for tests and diagnostics). */
  routes(host: string): boolean {
    return this.published.has(host.toLowerCase());
  }

  /** The hosts in HAProxy's map as HAProxy has them (for tests and diagnostics). */
  async mapHosts(): Promise<string[]> {
    const answer = await this.api.command(`show map ${this.mapFile}`);
    return answer
      .split('\n')
      .map((line) => line.split(' ')[1])
      .filter((host): host is string => Boolean(host));
  }

  /** The directory of HAProxy's configuration, maps, keys and socket (mode 700). */
  get runDir(): string {
    return this.dir;
  }

  /** HAProxy's process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Requests served so far per `backend/server` (`fast/app`: straight to a sandbox). */
  serverTotals(): Promise<Record<string, number>> {
    return this.api.serverTotals();
  }

  /**
   * Per preview host the front served: requests in flight (a long stream counts while it lasts)
   * and requests counted since HAProxy made the entry (exact, whether logged or not).
   */
  hostCounters(): Promise<{ key: string; inUse: number; requests: number }[]> {
    if (!this.child) return Promise.resolve([]);
    return this.api.tableEntries(FRONT_INFLIGHT_TABLE).catch(() => []);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 3000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
