import { isoAt } from '../domain/clock.js';
import type { EgressPolicy } from '../domain/egress.js';
import { PreviewdError } from '../domain/errors.js';
import { nowIso, type SandboxPatch, type SandboxRecord } from '../domain/sandbox.js';
import type { SandboxWriter } from './writer.js';

/**
 * What a client changes on a sandbox without moving its state: its egress policy, its expiry,
 * its exposed ports, its preview tokens' cut-off, its activity (keepalive).
 */

/**
 * Sets the sandbox's own egress policy; running or not, it is in force for new connections once
 * this returns (connections already open keep going).
 */
export async function setNetwork(w: SandboxWriter, id: string, policy: EgressPolicy): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    await w.get(id);
    const next = await w.store.updateSandbox(
      id,
      { network: policy, updatedAt: w.nowIso() },
      undefined,
      w.fenced(),
    );
    if (!next) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
    await w.onNetworkChange?.(id);
    return next;
  });
}

/**
 * Moves the expiry to `ttlSec` from now, at most lifecycle.maxTtlSec after the sandbox was
 * created.
 */
export async function extend(w: SandboxWriter, id: string, ttlSec: number): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    const record = await w.get(id);
    const limit = Date.parse(record.createdAt) + w.config.lifecycle.maxTtlSec * 1000;
    const wanted = w.clock.now() + ttlSec * 1000;
    if (wanted > limit) {
      throw new PreviewdError(
        'resource_limit',
        `sandbox ${id} may live until ${new Date(limit).toISOString()} at most (lifecycle.maxTtlSec ${w.config.lifecycle.maxTtlSec} after creation)`,
        {
          details: { field: 'ttlSec', max: Math.max(0, Math.floor((limit - w.clock.now()) / 1000)) },
          hint: 'Ask for a shorter ttlSec; details.max is what is left.',
        },
      );
    }
    const expiresAt = new Date(wanted).toISOString();
    const next = await w.store.updateSandbox(
      id,
      { expiresAt, ttlSec: Math.round((wanted - Date.parse(record.createdAt)) / 1000) },
      undefined,
      w.fenced(),
    );
    if (!next) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
    return next;
  });
}

/** Adds a port to the sandbox's previews; no restart (the edge reaches any port of the sandbox). */
export async function exposePort(w: SandboxWriter, id: string, port: number): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    const record = await w.get(id);
    if (record.ports.includes(port)) return record;
    return writePorts(w, record, [...record.ports, port]);
  });
}

export async function unexposePort(w: SandboxWriter, id: string, port: number): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    const record = await w.get(id);
    if (!record.ports.includes(port)) {
      throw new PreviewdError('port_not_exposed', `port ${port} of sandbox ${id} is not exposed`);
    }
    return writePorts(
      w,
      record,
      record.ports.filter((p) => p !== port),
    );
  });
}

/** Writes the sandbox's ports with their `sandbox.ports` event (the outbox), then delivers it. */
async function writePorts(w: SandboxWriter, record: SandboxRecord, ports: number[]): Promise<SandboxRecord> {
  const event = { type: 'sandbox.ports' as const, sandboxId: record.id, data: { ports } };
  const next =
    (await w.store.updateSandbox(record.id, { ports }, undefined, { event, ...w.fenced() })) ?? record;
  await w.bus.pump();
  return next;
}

/** Revokes every preview token issued for the sandbox until now. */
export async function revokePreviewTokens(w: SandboxWriter, id: string): Promise<SandboxRecord> {
  await w.get(id);
  // Tokens are signed with the system's time: their cut-off is too.
  const validAfter = nowIso();
  const next = await w.store.updateSandbox(id, { previewTokensValidAfter: validAfter }, undefined, {
    event: { type: 'sandbox.preview_tokens_revoked', sandboxId: id, data: { validAfter } },
    ...w.fenced(),
  });
  if (!next) throw new PreviewdError('sandbox_not_found', `sandbox ${id} does not exist`);
  await w.bus.pump();
  await w.afterTokensRevoked?.(id);
  return next;
}

export async function keepalive(w: SandboxWriter, id: string, untilSec?: number): Promise<SandboxRecord> {
  const record = await w.get(id);
  const patch: SandboxPatch = { lastActivityAt: w.nowIso() };
  if (untilSec !== undefined) patch.keepAliveUntil = isoAt(w.clock, untilSec * 1000);
  return (await w.store.updateSandbox(id, patch, undefined, w.fenced())) ?? record;
}
