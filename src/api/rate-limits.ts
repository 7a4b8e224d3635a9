import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

/**
 * The API's rate limits, on @fastify/rate-limit's counters:
 * - failed authentications per client address (a wrong key, a dead session): past the limit
 *   every request from that address needing a key gets 429 until the window ends, right keys too,
 *   so guessing is bounded;
 * - sandbox creates per owner (a tenant, or the end user an admin acts for) or else per admin key.
 */
export class RateLimits {
  private constructor(
    private readonly authFailures: Limiter,
    private readonly creates: Limiter,
  ) {}

  static async install(app: FastifyInstance, config: Config['api']['rateLimit']): Promise<RateLimits> {
    await app.register(rateLimit, { global: false });
    const timeWindow = config.windowSec * 1000;
    return new RateLimits(
      app.createRateLimit({ max: config.authFailures, timeWindow, keyGenerator: (req) => `auth:${req.ip}` }),
      app.createRateLimit({
        max: config.creates,
        timeWindow,
        keyGenerator: (req) =>
          `create:${req.caller?.owner ?? scopeHeader(req) ?? req.caller?.keyId ?? req.ip}`,
      }),
    );
  }

  /** Refuses a request from an address that failed too often, before its key is even looked at. */
  async checkAuthFailures(request: FastifyRequest): Promise<void> {
    const state = await this.authFailures(request, { increment: false });
    if (!state.isAllowed && state.remaining <= 0 && state.ttl > 0) {
      throw limited('too many failed authentications from this address', state.ttlInSeconds);
    }
  }

  async countAuthFailure(request: FastifyRequest): Promise<void> {
    await this.authFailures(request);
  }

  async checkCreate(request: FastifyRequest): Promise<void> {
    const state = await this.creates(request);
    if (!state.isAllowed && state.isExceeded) {
      throw limited('too many sandbox creates for this owner', state.ttlInSeconds);
    }
  }
}

function scopeHeader(request: FastifyRequest): string | undefined {
  const value = request.headers['x-previewd-owner'];
  return typeof value === 'string' && value ? value : undefined;
}

function limited(message: string, retryAfterSec: number): PreviewdError {
  const after = String(Math.max(1, Math.ceil(retryAfterSec)));
  return new PreviewdError('rate_limited', `${message}; retry in ${after} s`, {
    headers: { 'retry-after': after },
  });
}
