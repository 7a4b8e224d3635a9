import { PreviewdError } from '../domain/errors.js';
import type { StateChangeReason } from '../domain/events.js';
import type { SandboxRecord } from '../domain/sandbox.js';
import { assertTransition } from '../domain/state-machine.js';
import { provision } from './sandbox-create.js';
import type { SandboxWriter } from './writer.js';

/**
 * The operations that move a sandbox between running and asleep, and delete it: start, restart
 * of its app, stop (preStop first), pause, resume, delete. The `…Locked` ones expect the caller
 * to hold the sandbox's lock (the intents in intents.ts do).
 */

export async function start(w: SandboxWriter, id: string): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    const record = await w.get(id);
    if (record.state === 'running' || record.state === 'starting') return record;
    if (record.state === 'paused') return resume(w, record);
    // Only the states that need a container started: a bad transition still answers invalid_state.
    if (record.state === 'stopped' || record.state === 'error') {
      await w.gate?.admit({ sandboxId: id, owner: record.owner, kind: 'start' });
    }
    await w.transition(record, 'starting', { error: undefined, stopReason: undefined });
    const failure = await provision(w, id);
    if (failure) throw failure;
    return w.get(id);
  });
}

/**
 * Restarts the app of a running sandbox through its supervisor (the install runs again when the
 * dependencies changed); a sandbox that is not running is started, which runs the same plan.
 */
export async function restartApp(w: SandboxWriter, id: string): Promise<SandboxRecord> {
  const record = await w.get(id);
  if (record.state !== 'running') return start(w, id);
  if (!w.provider.restartApp || !record.runtime.start) {
    throw new PreviewdError('invalid_state', `sandbox ${id} runs no supervised app`, {
      hint: 'Only sandboxes with a start command (detected or runtime.start) have an app to restart.',
    });
  }
  await w.provider.restartApp(id);
  return record;
}

export async function stop(w: SandboxWriter, id: string, reason?: StateChangeReason): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    const record = await w.get(id);
    if (record.state === 'stopped') return record;
    return stopLocked(w, record, reason);
  });
}

/**
 * Stops a sandbox whose lock the caller holds. A running or paused sandbox runs its preStop
 * command first (time-bounded; its failure is logged, the stop goes on).
 */
export async function stopLocked(
  w: SandboxWriter,
  record: SandboxRecord,
  reason?: StateChangeReason,
): Promise<SandboxRecord> {
  const wasLive = record.state === 'running' || record.state === 'paused';
  const stopping = record.state === 'stopping' ? record : await w.transition(record, 'stopping', {}, reason);
  try {
    if (wasLive && record.preStop) await runPreStop(w, record);
    if (wasLive) await settleBeforeSleep(w, record.id);
    await w.provider.stop(record.id);
  } catch (err) {
    await w.fail(record.id, err);
    throw err;
  }
  return w.transition(stopping, 'stopped', { stoppedAt: w.nowIso(), stopReason: reason }, reason);
}

async function runPreStop(w: SandboxWriter, record: SandboxRecord): Promise<void> {
  const preStop = record.preStop!;
  const timeoutSec = Math.min(
    preStop.timeoutSec ?? w.config.lifecycle.preStopTimeoutSec,
    w.config.lifecycle.preStopTimeoutSec,
  );
  try {
    if (record.state === 'paused') await w.provider.unpause(record.id);
    const result = await w.provider.exec(record.id, {
      cmd: typeof preStop.cmd === 'string' ? ['sh', '-c', preStop.cmd] : preStop.cmd,
      timeoutSec,
      maxOutputBytes: 64 * 1024,
    });
    w.log.info(
      {
        sandboxId: record.id,
        exitCode: result.exitCode,
        stderr: result.stderr.toString('utf8').slice(-2000),
      },
      'preStop ran',
    );
  } catch (err) {
    w.log.warn({ err, sandboxId: record.id }, 'preStop failed; stopping anyway');
  }
}

export async function pause(
  w: SandboxWriter,
  id: string,
  reason?: StateChangeReason,
): Promise<SandboxRecord> {
  return w.lock.run(id, async () => {
    const record = await w.get(id);
    if (record.state === 'paused') return record;
    return pauseLocked(w, record, reason);
  });
}

/** Pauses a sandbox whose lock the caller holds. */
export async function pauseLocked(
  w: SandboxWriter,
  record: SandboxRecord,
  reason?: StateChangeReason,
): Promise<SandboxRecord> {
  assertTransition(record.id, record.state, 'paused');
  await settleBeforeSleep(w, record.id);
  await w.provider.pause(record.id);
  return w.transition(record, 'paused', {}, reason);
}

async function settleBeforeSleep(w: SandboxWriter, id: string): Promise<void> {
  try {
    await w.beforeSleep?.(id);
  } catch (err) {
    w.log.warn({ err, sandboxId: id }, 'before-sleep hook failed; going on');
  }
}

async function resume(w: SandboxWriter, record: SandboxRecord): Promise<SandboxRecord> {
  await w.provider.unpause(record.id);
  return w.transition(record, 'running', { lastActivityAt: w.nowIso() });
}

/**
 * Makes a sandbox ready for exec: running stays, paused is resumed (a state change like any
 * other), anything else answers sandbox_not_running with a hint that fits the state.
 */
export async function ensureRunningForExec(w: SandboxWriter, id: string): Promise<SandboxRecord> {
  const record = await w.get(id);
  if (record.state === 'running') return record;
  if (record.state === 'paused') return start(w, id);
  // Asleep because previewd put it to sleep, not because a client stopped it: wake it.
  if (record.state === 'stopped' && record.stopReason) return start(w, id);
  const hint =
    record.state === 'creating' || record.state === 'starting'
      ? 'The sandbox is starting; wait for state "running" (follow GET /v1/sandboxes/{id}/events).'
      : `Start it first: POST /v1/sandboxes/${id}/start.`;
  throw new PreviewdError('sandbox_not_running', `sandbox ${id} is ${record.state}, not running`, { hint });
}

/** Deletes the sandbox: its container, its workspace, then the row (kept as `deleted`). Idempotent on the engine side. */
export async function deleteSandbox(w: SandboxWriter, id: string, reason?: StateChangeReason): Promise<void> {
  await w.lock.run(id, async () => deleteLocked(w, await w.get(id), reason));
}

/** Deletes a sandbox whose lock the caller holds. */
export async function deleteLocked(
  w: SandboxWriter,
  record: SandboxRecord,
  reason?: StateChangeReason,
): Promise<void> {
  const id = record.id;
  await w.transition(record, 'deleted', { deletedAt: w.nowIso() }, reason);
  try {
    await w.provider.destroy(id);
    // Container and files gone: nothing on the host has its uid any more.
    await w.store.releaseUid(id);
  } catch (err) {
    // The row is already deleted; the reconciler removes what the engine kept.
    w.log.warn({ err, sandboxId: id }, 'destroy failed; the reconciler will retry');
  }
  await w.bus.publish({ type: 'sandbox.deleted', sandboxId: id, data: {} }, w.fenced());
}
