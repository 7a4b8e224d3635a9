import type { PoolState } from './generated/api-types.js';
import type { Http } from './http.js';

/**
 * The warm pool of the node that answers (an admin key only): per runtime image, how many
 * pre-started containers wait for a create, how many are being made, how many sandboxes run on a
 * claimed one (docs/pool.md).
 */
export class Pool {
  constructor(private readonly http: Http) {}

  state(): Promise<PoolState> {
    return this.http.json('GET', '/v1/pool');
  }
}
