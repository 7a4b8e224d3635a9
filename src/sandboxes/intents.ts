import { PreviewdError } from '../domain/errors.js';
import type { StateChangeReason } from '../domain/events.js';
import type { SandboxPatch } from '../domain/sandbox.js';
import { deleteLocked, pauseLocked, stopLocked } from './run-state.js';
import { provision } from './sandbox-create.js';
import { isAwake, type SandboxWriter, type StillIdle } from './writer.js';

/**
 * What the passes ask of a sandbox (the reconciler, the idle and expiry reapers, admission, the
 * node watch). Each re-reads the row under the sandbox's lock (`withRow`: only this node's rows)
 * and answers whether it acted.
 */

/** Idle reaper: stops a running or paused sandbox (reason `idle`) if `stillIdle` says so under its lock. */
export function stopIdle(w: SandboxWriter, id: string, stillIdle: StillIdle): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (!isAwake(current.state) || !stillIdle(current)) return false;
    await stopLocked(w, current, 'idle');
    return true;
  });
}

/** Idle reaper: pauses a running sandbox (reason `idle`) if `stillIdle` says so under its lock. */
export function pauseIdle(w: SandboxWriter, id: string, stillIdle: StillIdle): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'running' || !stillIdle(current)) return false;
    await pauseLocked(w, current, 'idle');
    return true;
  });
}

/**
 * Admission makes room: stops a running or paused sandbox with `reason` (`capacity`) if
 * `stillIdle` says so under its lock.
 */
export function giveWay(
  w: SandboxWriter,
  id: string,
  stillIdle: StillIdle,
  reason: StateChangeReason,
): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (!isAwake(current.state) || !stillIdle(current)) return false;
    await stopLocked(w, current, reason);
    return true;
  });
}

/**
 * Expiry reaper: deletes the sandbox if it is past its expiresAt, checked under its lock (an
 * extend that came first wins): event `sandbox.expired`, then the usual deletion. Returns whether
 * it did.
 */
export async function expire(w: SandboxWriter, id: string): Promise<boolean> {
  return w.lock.run(id, async () => {
    const record = await w.store.getSandbox(id);
    if (!record?.expiresAt || Date.parse(record.expiresAt) > w.clock.now()) return false;
    await w.bus.publish(
      { type: 'sandbox.expired', sandboxId: id, data: { expiresAt: record.expiresAt } },
      w.fenced(),
    );
    await deleteLocked(w, record, 'expired');
    return true;
  });
}

/**
 * Reconciler: a `starting` sandbox whose container runs (a previous process died after the
 * engine started it) becomes `running`.
 */
export function adoptRunning(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'starting') return false;
    if ((await w.provider.inspect(id)).status !== 'running') return false;
    await w.transition(current, 'running', { startedAt: w.nowIso() });
    return true;
  });
}

/**
 * Reconciler: finishes a create (or start) a previous process left in `creating` / `starting`
 * (spawn is idempotent). A failure leaves the sandbox in `error`; it still acted.
 */
export function finishCreate(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'creating' && current.state !== 'starting') return false;
    await provision(w, id);
    return true;
  });
}

/** Reconciler: finishes a stop a previous process left in `stopping`. */
export function finishStop(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'stopping') return false;
    await stopLocked(w, current);
    return true;
  });
}

/**
 * Reconciler: a running or paused sandbox whose container the engine no longer has goes to
 * `error` with `sandbox_lost` (a start recreates it); event `sandbox.lost` with `reason`.
 */
export function markLost(w: SandboxWriter, id: string, reason: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (!isAwake(current.state)) return false;
    if ((await w.provider.inspect(id)).status !== 'missing') return false;
    await w.transition(current, 'error', {
      error: {
        code: 'sandbox_lost',
        message: 'the container disappeared; start the sandbox to recreate it',
      },
    });
    await w.bus.publish({ type: 'sandbox.lost', sandboxId: id, data: { reason } }, w.fenced());
    return true;
  });
}

/**
 * Node watch (src/cluster/node-watch.ts): a sandbox of a node that was fenced off goes to `error`
 * with `sandbox_lost` — its container and files are on that node, out of reach. Not under a lock
 * (no process holds that sandbox's lock any more): the compare-and-set on its state makes one of
 * the sweeping nodes do it, once.
 */
export async function markNodeLost(w: SandboxWriter, id: string, reason: string): Promise<boolean> {
  const current = await w.store.getSandbox(id);
  if (!current || !['creating', 'starting', 'running', 'paused', 'stopping'].includes(current.state))
    return false;
  try {
    await w.transition(current, 'error', {
      error: { code: 'sandbox_lost', message: `${reason}; start the sandbox again once its node is back` },
    });
  } catch (err) {
    if (err instanceof PreviewdError && err.code === 'invalid_state') return false;
    throw err;
  }
  await w.bus.publish({ type: 'sandbox.lost', sandboxId: id, data: { reason } }, w.fenced());
  return true;
}

/**
 * Reconciler: a running or paused sandbox whose container has exited becomes `stopped` (reason
 * `engine`; error `app_exited` when the exit code was not 0). The engine is asked again here.
 */
export function settleExited(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (!isAwake(current.state)) return false;
    const info = await w.provider.inspect(id);
    if (info.status !== 'exited' && info.status !== 'dead' && info.status !== 'created') return false;
    const stoppedAt = w.nowIso();
    const patch: SandboxPatch =
      info.exitCode && info.exitCode !== 0
        ? { stoppedAt, error: { code: 'app_exited', message: `the app exited with code ${info.exitCode}` } }
        : { stoppedAt };
    const stopping = await w.transition(current, 'stopping', {}, 'engine');
    await w.transition(stopping, 'stopped', patch, 'engine');
    return true;
  });
}

/** Reconciler: a running sandbox whose container the engine shows paused becomes `paused`. */
export function settlePaused(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'running' || (await w.provider.inspect(id)).status !== 'paused') return false;
    await w.transition(current, 'paused');
    return true;
  });
}

/** Reconciler: a paused sandbox whose container the engine shows running becomes `running`. */
export function settleResumed(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'paused' || (await w.provider.inspect(id)).status !== 'running') return false;
    await w.transition(current, 'running');
    return true;
  });
}

/** Reconciler: stops the container of a `stopped` sandbox that runs again (started from outside). */
export function stopStray(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(id, async (current) => {
    if (current.state !== 'stopped') return false;
    const { status } = await w.provider.inspect(id);
    if (status !== 'running' && status !== 'paused') return false;
    await w.provider.stop(id);
    return true;
  });
}

/** Reconciler: removes what the engine kept of a `deleted` sandbox (its container, its workspace). */
export function removeDeleted(w: SandboxWriter, id: string): Promise<boolean> {
  return w.withRow(
    id,
    async (current) => {
      if (current.state !== 'deleted') return false;
      if ((await w.provider.inspect(id)).status === 'missing') return false;
      await w.provider.destroy(id);
      await w.store.releaseUid(id);
      return true;
    },
    { includeDeleted: true },
  );
}

/**
 * Reconciler: removes a container or workspace no live row names — a create that died before its
 * row was written, or a delete that died after the container went and before the workspace did —
 * checked under the id's lock; false when a live row exists by now.
 */
export function removeOrphan(w: SandboxWriter, id: string): Promise<boolean> {
  return w.lock.run(id, async () => {
    const row = await w.store.getSandbox(id, { includeDeleted: true });
    if (row && row.state !== 'deleted') return false;
    await w.provider.destroy(id);
    await w.store.releaseUid(id);
    return true;
  });
}
