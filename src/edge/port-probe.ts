import { connect } from 'node:net';

/**
 * Whether the app answers at host:port (within `timeoutMs`). A TCP connect is enough when the
 * edge reaches the container directly. Through a published loopback port (`http: true`) the
 * engine's proxy accepts connections even while nothing listens inside, so the probe sends a
 * HEAD request and waits for the first bytes of an HTTP answer.
 */
export function probePort(
  host: string,
  port: number,
  timeoutMs = 500,
  opts: { http?: boolean } = {},
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
    socket.once('connect', () => {
      if (!opts.http) {
        done(true);
        return;
      }
      socket.once('data', (chunk: Buffer) => done(chunk.subarray(0, 5).toString('latin1') === 'HTTP/'));
      socket.write(
        'HEAD / HTTP/1.1\r\nHost: previewd-probe\r\nUser-Agent: previewd-edge-probe\r\nConnection: close\r\n\r\n',
      );
    });
  });
}
