import { connect } from 'node:net';

export interface RawAnswer {
  /** The status of the first response line; 0 when the server closed without answering. */
  status: number;
  head: string;
  body: Buffer;
  /** Set when the connection failed or timed out before any answer. */
  error?: string;
}

/**
 * Sends bytes as they are to an HTTP server on loopback (invalid UTF-8, NUL, bad framing, huge
 * headers: nothing a client library would refuse to send) and reads the answer: until the server
 * closes, its Content-Length is in, or, for streams (SSE, 101, chunked), soon after its head. The
 * request should carry `Connection: close`.
 */
export function rawRequest(baseUrl: string, bytes: Buffer, timeoutMs = 15_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    const parts: Buffer[] = [];
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(streamTimer);
      socket.destroy();
      let all = Buffer.concat(parts);
      // Interim answers (100 Continue) come before the real one.
      while (/^HTTP\/1\.[01] 1(?!01)\d\d/.test(all.subarray(0, 12).toString('latin1'))) {
        const end = all.indexOf('\r\n\r\n');
        if (end === -1) break;
        all = all.subarray(end + 4);
      }
      const end = all.indexOf('\r\n\r\n');
      const head = (end === -1 ? all : all.subarray(0, end)).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({
        status: match ? Number(match[1]) : 0,
        head,
        body: end === -1 ? Buffer.alloc(0) : all.subarray(end + 4),
        ...(match || !error ? {} : { error }),
      });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    let received = 0;
    let streamTimer: NodeJS.Timeout | undefined;
    socket.on('data', (chunk) => {
      parts.push(chunk);
      received += chunk.length;
      if (!answered(Buffer.concat(parts, received))) return;
      finish();
    });
    // A stream that never ends (logs with follow, SSE, an upgraded socket) is answered once its
    // head is in; a chunked body gets a moment to end.
    const answered = (received: Buffer): boolean => {
      let all = received;
      while (/^HTTP\/1\.[01] 1(?!01)\d\d/.test(all.subarray(0, 12).toString('latin1'))) {
        const end = all.indexOf('\r\n\r\n');
        if (end === -1) return false;
        all = all.subarray(end + 4);
      }
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return false;
      const head = all.subarray(0, end).toString('latin1').toLowerCase();
      const body = all.length - end - 4;
      if (/^http\/1\.[01] 101/.test(head) || head.includes('content-type: text/event-stream')) return true;
      const length = /\r\ncontent-length: *(\d+)/.exec(head);
      if (length) return body >= Number(length[1]);
      if (head.includes('transfer-encoding: chunked')) {
        if (all.subarray(all.length - 5).toString('latin1') === '0\r\n\r\n') return true;
        streamTimer ??= setTimeout(() => finish(), 1000);
      }
      return false;
    };
    socket.on('end', () => finish());
    socket.on('close', () => finish('closed'));
    // A server that answers early (413, 431) and closes may reset the rest of our write.
    socket.on('error', (err) => finish((err as NodeJS.ErrnoException).code ?? err.message));
    socket.write(bytes);
  });
}

/** A request as bytes: `Connection: close` and a Content-Length matching the body are added. */
export function rawHttp(
  method: string | Buffer,
  target: string | Buffer,
  headers: (string | Buffer)[] = [],
  body?: Buffer,
): Buffer {
  const lines: Buffer[] = [
    Buffer.concat([toBytes(method), Buffer.from(' '), toBytes(target), Buffer.from(' HTTP/1.1\r\n')]),
  ];
  for (const h of headers) lines.push(Buffer.concat([toBytes(h), Buffer.from('\r\n')]));
  if (body) lines.push(Buffer.from(`content-length: ${body.length}\r\n`));
  lines.push(Buffer.from('connection: close\r\n\r\n'));
  if (body) lines.push(body);
  return Buffer.concat(lines);
}

function toBytes(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** The `{error:{code}}` of a raw answer, when its body is one. */
export function errorCodeOf(answer: RawAnswer): string | undefined {
  try {
    return (JSON.parse(answer.body.toString('utf8')) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
