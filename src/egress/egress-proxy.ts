import { Resolver } from 'node:dns/promises';
import { createServer, isIP, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { getExtensionData, readTlsClientHello } from 'read-tls-client-hello';
import { cidrContains, decideEgress, type EgressPolicy } from '../domain/egress.js';
import { NON_INTERNET_RANGES } from '../providers/docker/containment-rules.js';

/**
 * The egress proxy: sandboxes' TCP 80 and 443 are redirected here (nat REDIRECT per sandbox source
 * address, egress-rules.ts) when their policy names hosts. It reads the name the sandbox asks for
 * — the TLS ClientHello's SNI (parsed by read-tls-client-hello, the bytes put back untouched) or the
 * HTTP Host header — decides by the sandbox's policy, resolves the name itself and connects itself
 * to the resolved address on the same port. The address the sandbox dialled is never used, so a
 * sandbox sending SNI `allowed.example` to another address reaches allowed.example. A name that
 * resolves to a private, host or metadata address is refused (DNS rebinding). TLS is not
 * terminated: the sandbox talks to the real server end to end.
 */

export type DeniedReason =
  | 'deny'
  | 'not_listed'
  | 'deny_entry'
  | 'private_address'
  | 'no_name'
  | 'resolve_failed'
  | 'unknown_sandbox'
  | 'connection_limit';

export interface EgressDenial {
  sandboxId?: string;
  /** The name the sandbox asked for (SNI / Host), when it sent one. */
  host?: string;
  port: 80 | 443;
  /** deny | not_listed | deny:<entry> | private_address | no_name | resolve_failed | unknown_sandbox */
  rule: string;
  reason: DeniedReason;
}

export interface EgressProxyOptions {
  /** The address to listen on (the sandbox network's gateway: where REDIRECT delivers). */
  listenHost: string;
  /** Which sandbox, and its policy, a source address belongs to. */
  lookup: (addr: string) => { sandboxId: string; policy: EgressPolicy } | undefined;
  /** host:port of the resolver to ask; default the host's. */
  resolver?: string;
  /** Private CIDRs the operator allows (network.allowPrivate): not refused as private. */
  allowPrivate: string[];
  onDenied: (denial: EgressDenial) => void;
  onAllowed?: (port: 80 | 443) => void;
  /** Upstream ports (default 80 and 443; the same as the sandbox dialled). */
  upstreamPorts?: { http: number; tls: number };
  log?: Logger;
}

const HEAD_LIMIT = 16 * 1024;
/** A DNS name or an IPv4 address as a sandbox may ask for it (lower case). */
const NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;
const HEAD_TIMEOUT_MS = 10_000;
/** Open connections one sandbox may hold through the proxy: one sandbox cannot use up the host's sockets. */
export const CONNECTIONS_PER_SANDBOX = 256;

function reasonOf(rule: string): DeniedReason {
  return rule.startsWith('deny:') ? 'deny_entry' : (rule as DeniedReason);
}

/** The Host header's name (port and brackets left out) from the head of an HTTP request, if complete. */
export function hostFromHead(head: Buffer): { done: boolean; host?: string } {
  const end = head.indexOf('\r\n\r\n');
  if (end < 0) return { done: false };
  const text = head.subarray(0, end).toString('latin1');
  const m = /\r\nhost:[ \t]*([^\r\n]*)/i.exec(text);
  const value = m?.[1]?.trim();
  if (!value) return { done: true };
  const host = value.startsWith('[') ? value.slice(1, value.indexOf(']')) : value.replace(/:\d+$/, '');
  return { done: true, host: host.toLowerCase().replace(/\.$/, '') };
}

export class EgressProxy {
  private servers: Server[] = [];
  private readonly resolver = new Resolver({ timeout: 3000, tries: 2 });
  private readonly sockets = new Set<Socket>();
  private readonly perSource = new Map<string, number>();
  ports?: { http: number; tls: number };

  constructor(private readonly opts: EgressProxyOptions) {
    if (opts.resolver) {
      const [host, port] = [
        opts.resolver.replace(/:\d+$/, ''),
        Number(/:(\d+)$/.exec(opts.resolver)?.[1] ?? 53),
      ];
      this.resolver.setServers([`${host}:${port}`]);
    }
  }

  async start(): Promise<{ http: number; tls: number }> {
    const listen = (kind: 'http' | 'tls') =>
      new Promise<number>((resolve, reject) => {
        const server = createServer((socket) => this.accept(socket, kind));
        server.once('error', reject);
        server.listen(0, this.opts.listenHost, () => {
          this.servers.push(server);
          resolve((server.address() as { port: number }).port);
        });
      });
    this.ports = { http: await listen('http'), tls: await listen('tls') };
    return this.ports;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    this.servers = [];
  }

  private accept(socket: Socket, kind: 'http' | 'tls'): void {
    this.sockets.add(socket);
    const source = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const open = (this.perSource.get(source) ?? 0) + 1;
    this.perSource.set(source, open);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const left = (this.perSource.get(source) ?? 1) - 1;
      if (left > 0) this.perSource.set(source, left);
      else this.perSource.delete(source);
    });
    if (open > CONNECTIONS_PER_SANDBOX) {
      const sandbox = this.opts.lookup(source);
      this.opts.onDenied({
        sandboxId: sandbox?.sandboxId,
        port: kind === 'http' ? 80 : 443,
        rule: 'connection_limit',
        reason: 'connection_limit',
      });
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    socket.setTimeout(HEAD_TIMEOUT_MS, () => socket.destroy());
    void this.handle(socket, kind).catch((err) => {
      this.opts.log?.debug({ err }, 'egress proxy connection failed');
      socket.destroy();
    });
  }

  private async handle(socket: Socket, kind: 'http' | 'tls'): Promise<void> {
    const port = kind === 'http' ? 80 : 443;
    const peer = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const sandbox = this.opts.lookup(peer);
    const deny = (rule: string, host?: string) => {
      this.opts.onDenied({ sandboxId: sandbox?.sandboxId, host, port, rule, reason: reasonOf(rule) });
      if (kind === 'http' && socket.writable) {
        socket.end(
          `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\negress refused by previewd (${rule})\n`,
        );
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
    };
    if (!sandbox) return deny('unknown_sandbox');

    let head: Buffer = Buffer.alloc(0);
    let host: string | undefined;
    if (kind === 'tls') {
      try {
        const hello = await readTlsClientHello(socket);
        host = getExtensionData(hello, 'server_name')?.serverName?.toLowerCase().replace(/\.$/, '');
      } catch {
        host = undefined;
      }
    } else {
      const read = await readHead(socket);
      head = read.head;
      host = read.host;
    }
    // What the sandbox sent is a name to look up, nothing else (and bounded before it reaches an event)
    if (!host || !NAME.test(host)) return deny('no_name');

    const first = decideEgress(sandbox.policy, host);
    // A `list` policy may still allow the name by its address (a CIDR entry): decided after resolving.
    if (!first.allowed && first.rule !== 'not_listed') return deny(first.rule, host);

    let addrs: string[];
    if (isIP(host) === 4) addrs = [host];
    else if (isIP(host) === 6) return deny('resolve_failed', host);
    else {
      try {
        addrs = await this.resolver.resolve4(host);
      } catch {
        return deny('resolve_failed', host);
      }
    }
    let refusal = 'resolve_failed';
    let target: string | undefined;
    for (const addr of addrs) {
      if (this.isPrivate(addr)) {
        refusal = 'private_address';
        continue;
      }
      const d = decideEgress(sandbox.policy, host, addr);
      if (!d.allowed) {
        refusal = d.rule;
        continue;
      }
      target = addr;
      break;
    }
    if (!target) return deny(refusal, host);

    const upstreamPort =
      kind === 'http' ? (this.opts.upstreamPorts?.http ?? 80) : (this.opts.upstreamPorts?.tls ?? 443);
    const upstream = tcpConnect({ host: target, port: upstreamPort });
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    upstream.setTimeout(HEAD_TIMEOUT_MS, () => upstream.destroy());
    await new Promise<void>((resolve, reject) => {
      upstream.once('connect', () => resolve());
      upstream.once('error', reject);
    });
    upstream.setTimeout(0);
    socket.setTimeout(0);
    this.opts.onAllowed?.(port);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  }

  /** Not the internet: private, loopback, link-local and reserved ranges (unless allowed), and this host's own addresses. */
  private isPrivate(addr: string): boolean {
    if (this.opts.allowPrivate.some((c) => cidrContains(c, addr))) return false;
    if (NON_INTERNET_RANGES.some((r) => cidrContains(r, addr))) return true;
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (a.address === addr) return true;
    }
    return false;
  }
}

/** Reads an HTTP request head (at most 16 KiB) and the Host it names; the bytes are kept to replay upstream. */
function readHead(socket: Socket): Promise<{ head: Buffer; host?: string }> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    const done = (host?: string) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      resolve({ head, host });
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const parsed = hostFromHead(head);
      if (parsed.done) done(parsed.host);
      else if (head.length > HEAD_LIMIT) done(undefined);
    };
    const onEnd = () => done(undefined);
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}
