import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  id: string;
  timestamp: string;
  /** Whether `Webhook.verify` accepted it with the path's secret. */
  verified: boolean;
  body: { type: string; timestamp: string; data: any };
  /** Deliveries of the same sandbox in flight at this receiver when it arrived (this one included). */
  concurrentForSandbox: number;
}

/** What the receiver answers to a delivery: a status, or `hang` (never answers until closed). */
export type Answer = number | 'hang';

/**
 * A webhook receiver on loopback (node:http): verifies every delivery's Standard Webhooks
 * signature with the secret registered for its path, records it, answers as `answer` says.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  readonly secrets = new Map<string, string>();
  answer: (r: Received, attempt: number) => Answer | Promise<Answer> = () => 204;
  private readonly server: Server;
  private readonly inFlight = new Map<string, number>();
  private readonly hanging = new Set<ServerResponse>();
  private waiters: Array<() => void> = [];
  port = 0;

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Resolves once `check` holds for what was received (re-checked on every arrival). */
  async until<T>(check: (received: Received[]) => T | undefined, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check(this.received);
      if (value !== undefined && value !== false) return value;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`receiver: not there within ${timeoutMs} ms (${this.received.length} received)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const payload = Buffer.concat(chunks).toString('utf8');
    const path = req.url ?? '/';
    const header = (name: string) => String(req.headers[name] ?? '');
    let verified = false;
    const secret = this.secrets.get(path);
    if (secret) {
      try {
        new Webhook(secret).verify(payload, {
          'webhook-id': header('webhook-id'),
          'webhook-timestamp': header('webhook-timestamp'),
          'webhook-signature': header('webhook-signature'),
        });
        verified = true;
      } catch {
        verified = false;
      }
    }
    let body: Received['body'];
    try {
      body = JSON.parse(payload);
    } catch {
      body = { type: 'unparsable', timestamp: '', data: payload };
    }
    const sandbox = typeof body.data?.sandboxId === 'string' ? `${path} ${body.data.sandboxId}` : undefined;
    const concurrent = sandbox ? (this.inFlight.get(sandbox) ?? 0) + 1 : 1;
    if (sandbox) this.inFlight.set(sandbox, concurrent);
    const received: Received = {
      path,
      id: header('webhook-id'),
      timestamp: header('webhook-timestamp'),
      verified,
      body,
      concurrentForSandbox: concurrent,
    };
    const attempt = this.received.filter((r) => r.id === received.id).length + 1;
    this.received.push(received);
    for (const wake of this.waiters.splice(0)) wake();
    try {
      const answer = await this.answer(received, attempt);
      if (answer === 'hang') {
        this.hanging.add(res);
        res.once('close', () => this.hanging.delete(res));
        return;
      }
      res.statusCode = answer;
      res.end(answer >= 400 ? 'no' : '');
    } finally {
      if (sandbox) this.inFlight.set(sandbox, (this.inFlight.get(sandbox) ?? 1) - 1);
    }
  }
}
