import { connect } from 'node:net';
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { SandboxProvider } from '../providers/provider.js';
import type { Store } from '../store/store.js';

export interface ListeningPort {
  port: number;
  loopback: boolean;
}

const LOOPBACK4 = '0100007F'; // 127.0.0.1, little-endian hex as /proc/net/tcp prints it
const LOOPBACK6 = '00000000000000000000000001000000';

/** Parses /proc/net/tcp and /proc/net/tcp6 text into the ports in state LISTEN. */
export function parseListening(procNetTcp: string): ListeningPort[] {
  const ports = new Map<number, boolean>();
  for (const line of procNetTcp.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[3] !== '0A') continue;
    const [addr, portHex] = (cols[1] ?? '').split(':');
    if (!addr || !portHex) continue;
    const port = Number.parseInt(portHex, 16);
    if (!Number.isInteger(port) || port <= 0) continue;
    const loopback = addr === LOOPBACK4 || addr === LOOPBACK6 || addr.startsWith('7F', 6);
    // A port listening on any non-loopback address is reachable: that wins.
    ports.set(port, (ports.get(port) ?? true) && loopback);
  }
  return [...ports].map(([port, loopback]) => ({ port, loopback })).sort((a, b) => a.port - b.port);
}

function probe(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Notices ports opening and closing in running sandboxes: every interval it reads the listening
 * sockets of the sandbox's network namespace (/proc/net/tcp{,6} through provider.netTcp, so a dev
 * server that picks another port is seen) and probes the declared ports from outside, then
 * publishes `port.open` / `port.closed`.
 */
export class PortWatch {
  private readonly open = new Map<string, Map<number, ListeningPort>>();
  private timer?: NodeJS.Timeout;
  private scanning = false;

  constructor(
    private readonly deps: {
      provider: SandboxProvider;
      store: Store;
      bus: EventBus;
      log: Logger;
      intervalMs: number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.scanAll(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  watch(sandboxId: string): void {
    if (!this.open.has(sandboxId)) this.open.set(sandboxId, new Map());
  }

  /** Stops watching; the ports seen open are reported closed (the sandbox stopped). */
  async unwatch(sandboxId: string, opts: { publish?: boolean } = {}): Promise<void> {
    const ports = this.open.get(sandboxId);
    this.open.delete(sandboxId);
    if (!ports || opts.publish === false) return;
    const record = await this.deps.store.getSandbox(sandboxId, { includeDeleted: true });
    for (const p of ports.values()) {
      await this.deps.bus.publish({
        type: 'port.closed',
        sandboxId,
        data: { port: p.port, declared: record?.ports.includes(p.port) ?? false },
      });
    }
  }

  private async scanAll(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    try {
      for (const id of [...this.open.keys()]) {
        await this.scan(id).catch((err) => this.deps.log.debug({ err, sandboxId: id }, 'port scan failed'));
      }
    } finally {
      this.scanning = false;
    }
  }

  async scan(sandboxId: string): Promise<void> {
    const { provider, store, bus } = this.deps;
    const record = await store.getSandbox(sandboxId);
    if (record?.state !== 'running') return;
    const listening = new Map(parseListening(await provider.netTcp(sandboxId)).map((p) => [p.port, p]));
    // Declared ports not seen in the socket table (another network namespace, say) are probed
    // from outside; the usual case, every declared port listening, costs no engine call.
    const unseen = record.ports.filter((port) => !listening.has(port));
    const ip = unseen.length > 0 ? (await provider.inspect(sandboxId)).ip : undefined;
    if (ip) {
      for (const port of unseen) {
        if (await probe(ip, port)) listening.set(port, { port, loopback: false });
      }
    }
    const before = this.open.get(sandboxId);
    if (!before) return; // unwatched meanwhile
    for (const [port, p] of listening) {
      if (before.has(port)) continue;
      before.set(port, p);
      await bus.publish({
        type: 'port.open',
        sandboxId,
        data: { port, declared: record.ports.includes(port), loopback: p.loopback },
      });
    }
    for (const port of [...before.keys()]) {
      if (listening.has(port)) continue;
      before.delete(port);
      await bus.publish({
        type: 'port.closed',
        sandboxId,
        data: { port, declared: record.ports.includes(port) },
      });
    }
  }
}
