import { connect } from 'node:net';

/**
 * HAProxy's runtime API (the admin stats socket): one command per connection, answered in text.
 * Commands run one after another in the order they were sent, so an "add" and a later "del" of
 * the same route are applied in that order.
 */
export class FrontRuntimeApi {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly socketPath: string,
    private readonly timeoutMs = 5000,
  ) {}

  /** Sends one command and resolves with HAProxy's answer (trimmed). */
  command(line: string): Promise<string> {
    const run = this.tail.then(
      () => this.send(line),
      () => this.send(line),
    );
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every command sent so far has been answered (or failed). */
  async idle(): Promise<void> {
    await this.tail;
  }

  private send(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      const chunks: Buffer[] = [];
      // Bounded whatever happens, so one lost answer never holds up the commands queued behind it.
      const timer = setTimeout(
        () => socket.destroy(new Error(`HAProxy did not answer "${line}" within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8').trim());
      });
      socket.end(`${line}\n`);
    });
  }

  /**
   * Adds or replaces one map entry: both commands on one line, so nothing queued meanwhile (a
   * withdrawal of the same key) can land between them.
   */
  async setMapEntry(mapFile: string, key: string, value: string): Promise<void> {
    const answer = await this.command(`del map ${mapFile} ${key}; add map ${mapFile} ${key} ${value}`);
    const refused = answer
      .split('\n')
      .filter((line) => line.trim() && !/not found|Key not found/i.test(line));
    if (refused.length > 0) throw new Error(`HAProxy refused the route ${key}: ${refused.join(' ')}`);
  }

  async deleteMapEntry(mapFile: string, key: string): Promise<void> {
    await this.command(`del map ${mapFile} ${key}`);
  }

  /**
   * The entries of a stick table: key, how many requests in flight track it (`use`) and the
   * requests counted since the entry was made (`http_req_cnt`).
   */
  async tableEntries(table: string): Promise<{ key: string; inUse: number; requests: number }[]> {
    const answer = await this.command(`show table ${table}`);
    const entries: { key: string; inUse: number; requests: number }[] = [];
    for (const line of answer.split('\n')) {
      const key = /\skey=(\S+)/.exec(line)?.[1];
      if (!key) continue;
      entries.push({
        key,
        inUse: Number(/\suse=(\d+)/.exec(line)?.[1] ?? 0),
        requests: Number(/\shttp_req_cnt=(\d+)/.exec(line)?.[1] ?? 0),
      });
    }
    return entries;
  }

  /** Requests (sessions) served so far per `backend/server`, from `show stat`. */
  async serverTotals(): Promise<Record<string, number>> {
    const answer = await this.command('show stat');
    const [header, ...rows] = answer.split('\n');
    const columns = (header ?? '').replace(/^# /, '').split(',');
    const px = columns.indexOf('pxname');
    const sv = columns.indexOf('svname');
    const stot = columns.indexOf('stot');
    const totals: Record<string, number> = {};
    for (const row of rows) {
      const f = row.split(',');
      if (f.length < columns.length - 1 || f[sv] === 'FRONTEND' || f[sv] === 'BACKEND') continue;
      totals[`${f[px]}/${f[sv]}`] = Number(f[stot]);
    }
    return totals;
  }
}
