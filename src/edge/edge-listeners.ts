import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { splitHostPort } from '../config/load.js';
import { answerClientError } from '../http/client-errors.js';

/** The edge's listening servers and every socket they accepted, so that a stop closes them all. */
export class EdgeListeners {
  private readonly servers: Server[] = [];
  /** Every socket accepted by the listeners, until it closes. */
  private readonly sockets = new Set<Duplex>();

  /** Listens on `addr` (host:port; port 0 picks one); resolves with the base URL. */
  async listen(server: Server, addr: string, scheme: string): Promise<string> {
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = 0; // long uploads are fine; the app decides
    server.headersTimeout = 60_000;
    server.on('clientError', answerClientError);
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    const { host, port } = splitHostPort(addr);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.push(server);
    const bound = (server.address() as AddressInfo).port;
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  }

  async close(): Promise<void> {
    const closed = this.servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    // Upgraded sockets (WebSockets) are no HTTP connections any more: closed here, or the
    // listeners would wait for them.
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closed);
    this.servers.length = 0;
  }
}
