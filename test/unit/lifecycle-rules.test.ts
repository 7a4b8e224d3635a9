import { afterEach, describe, expect, it } from 'vitest';
import { newSandboxId } from '../../src/domain/ids.js';
import { type LifecycleRig, lifecycleRig } from '../helpers/lifecycle-rig.js';

/**
 * The lifecycle's rules on a ManualClock, the in-memory provider and a real SQLite store: idle
 * tiers, keepalive, ttl, admission and the reconciler's table, each in milliseconds, no sleeps.
 */
let rig: LifecycleRig;
afterEach(async () => {
  await rig?.close();
});

const SEC = 1000;

describe('idle tiers', () => {
  it('pauses after pauseAfterSec, stops after idleTimeoutSec, both with reason idle', async () => {
    rig = await lifecycleRig();
    const sb = await rig.running({ pauseAfterSec: 60, idleTimeoutSec: 300 });
    expect(sb.state).toBe('running');

    rig.clock.advance(59 * SEC);
    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [], stopped: [] });
    rig.clock.advance(1 * SEC);
    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [sb.id], stopped: [] });
    expect(await rig.state(sb.id)).toBe('paused');
    expect((await rig.provider.inspect(sb.id)).status).toBe('paused');

    rig.clock.advance(239 * SEC);
    expect((await rig.idleReaper.runOnce()).stopped).toEqual([]);
    rig.clock.advance(1 * SEC);
    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [], stopped: [sb.id] });
    const stopped = await rig.service.get(sb.id);
    expect(stopped).toMatchObject({ state: 'stopped', stopReason: 'idle' });
    expect((await rig.provider.inspect(sb.id)).status).toBe('exited');
    expect((await rig.transitions(sb.id)).filter((t) => t.reason === 'idle')).toEqual([
      { from: 'running', to: 'paused', reason: 'idle' },
      { from: 'paused', to: 'stopping', reason: 'idle' },
      { from: 'stopping', to: 'stopped', reason: 'idle' },
    ]);
  });

  it('keepalive holds both tiers off until it runs out; always_on never sleeps', async () => {
    rig = await lifecycleRig();
    const kept = await rig.running({ pauseAfterSec: 60, idleTimeoutSec: 300 });
    const always = await rig.running({ pauseAfterSec: 60, idleTimeoutSec: 300, idlePolicy: 'always_on' });
    rig.clock.advance(50 * SEC);
    await rig.service.keepalive(kept.id, 600);

    rig.clock.advance(500 * SEC);
    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [], stopped: [] });
    rig.clock.advance(100 * SEC); // keepalive over, last activity 600 s ago
    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [], stopped: [kept.id] });
    expect(await rig.state(always.id)).toBe('running');
  });

  it('leaves a sandbox with an operation under way for the next pass', async () => {
    rig = await lifecycleRig();
    const sb = await rig.running({ pauseAfterSec: 60, idleTimeoutSec: 300 });
    rig.clock.advance(61 * SEC);
    const stopping = rig.service.stop(sb.id); // holds the lock now
    expect(rig.service.isBusy(sb.id)).toBe(true);
    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [], stopped: [] });
    await stopping;
    expect(rig.service.isBusy(sb.id)).toBe(false);
    expect((await rig.service.get(sb.id)).stopReason).toBeUndefined();
  });

  it('a request that came in after the list wins (decided again under the lock)', async () => {
    rig = await lifecycleRig();
    const sb = await rig.running({ pauseAfterSec: 60, idleTimeoutSec: 300 });
    rig.clock.advance(61 * SEC);
    const stillIdle = () => false; // what the reaper finds when it looks again
    expect(await rig.service.pauseIdle(sb.id, stillIdle)).toBe(false);
    expect(await rig.service.pauseIdle(sb.id, () => true)).toBe(true);
    expect(await rig.service.pauseIdle(sb.id, () => true)).toBe(false); // paused already
    expect(await rig.state(sb.id)).toBe('paused');
  });
});

describe('ttl', () => {
  it('deletes at expiresAt (sandbox.expired, then deleted with reason expired); an extend moves it', async () => {
    rig = await lifecycleRig();
    const short = await rig.running({ ttlSec: 60 });
    const extended = await rig.running({ ttlSec: 60 });
    rig.clock.advance(30 * SEC);
    await rig.service.extend(extended.id, 120);
    rig.clock.advance(29 * SEC);
    expect(await rig.expiry.runOnce()).toEqual([]);
    rig.clock.advance(1 * SEC);
    expect(await rig.expiry.runOnce()).toEqual([short.id]);
    expect(await rig.state(short.id)).toBe('deleted');
    expect((await rig.provider.inspect(short.id)).status).toBe('missing');
    const types = (await rig.bus.history({ sandboxId: short.id })).map((e) => e.type);
    expect(types.slice(-3)).toEqual(['sandbox.expired', 'sandbox.state', 'sandbox.deleted']);
    expect((await rig.transitions(short.id)).at(-1)).toMatchObject({ to: 'deleted', reason: 'expired' });

    rig.clock.advance(90 * SEC);
    expect(await rig.expiry.runOnce()).toEqual([extended.id]);
  });
});

describe('admission', () => {
  it('stops the least recently active idle sandbox to make room, then answers capacity_exhausted', async () => {
    rig = await lifecycleRig({ 'admission.maxRunning': 2, 'admission.minActiveSec': 60 });
    const older = await rig.running({ pauseAfterSec: 0, idleTimeoutSec: 0 });
    rig.clock.advance(10 * SEC);
    const newer = await rig.running({ pauseAfterSec: 0, idleTimeoutSec: 0 });
    rig.clock.advance(70 * SEC); // both idle past minActiveSec; `older` the longer

    const third = await rig.running({ pauseAfterSec: 0, idleTimeoutSec: 0 });
    expect(await rig.service.get(older.id)).toMatchObject({ state: 'stopped', stopReason: 'capacity' });
    expect(await rig.state(newer.id)).toBe('running');
    expect(await rig.state(third.id)).toBe('running');

    await rig.service.keepalive(newer.id); // active now: may not give way
    await expect(
      rig.service.create({ runtime: { start: 'exec sleep 3600' } } as never),
    ).rejects.toMatchObject({
      code: 'capacity_exhausted',
      details: { retryAfterSec: rig.config.admission.retryAfterSec },
    });
    // A start of a stopped sandbox asks the same gate.
    await expect(rig.service.start(older.id)).rejects.toMatchObject({ code: 'capacity_exhausted' });
    expect(await rig.state(older.id)).toBe('stopped');

    rig.clock.advance(61 * SEC); // third and newer idle again: third (older activity) gives way
    await rig.service.start(older.id);
    expect(await rig.state(older.id)).toBe('running');
    expect(await rig.service.get(third.id)).toMatchObject({ state: 'stopped', stopReason: 'capacity' });
  });
});

describe('reconciler table', () => {
  it('running, container missing: error sandbox_lost and sandbox.lost', async () => {
    rig = await lifecycleRig();
    const sb = await rig.running();
    await rig.provider.vanish(sb.id);
    const report = await rig.reconciler.runOnce();
    expect(report.lost).toEqual([sb.id]);
    expect((await rig.service.get(sb.id)).error?.code).toBe('sandbox_lost');
    const lost = (await rig.bus.history({ sandboxId: sb.id })).filter((e) => e.type === 'sandbox.lost');
    expect(lost.map((e) => e.data)).toEqual([{ reason: 'container missing' }]);
    // Start recreates it.
    await rig.service.start(sb.id);
    expect(await rig.state(sb.id)).toBe('running');
  });

  it('running or paused, container exited: stopped (app_exited when the code was not 0), reason engine', async () => {
    rig = await lifecycleRig();
    const failed = await rig.running();
    const clean = await rig.running();
    await rig.service.pause(clean.id);
    await rig.provider.exitApp(failed.id, 3);
    await rig.provider.exitApp(clean.id, 0);
    const report = await rig.reconciler.runOnce();
    expect(report.stopped.sort()).toEqual([failed.id, clean.id].sort());
    expect(await rig.service.get(failed.id)).toMatchObject({
      state: 'stopped',
      error: { code: 'app_exited', message: 'the app exited with code 3' },
    });
    const cleanRow = await rig.service.get(clean.id);
    expect(cleanRow.state).toBe('stopped');
    expect(cleanRow.error).toBeUndefined();
    expect((await rig.transitions(failed.id)).slice(-2)).toEqual([
      { from: 'running', to: 'stopping', reason: 'engine' },
      { from: 'stopping', to: 'stopped', reason: 'engine' },
    ]);
  });

  it('the engine paused or resumed it from outside: the row follows; stopped but running: stopped again', async () => {
    rig = await lifecycleRig();
    const paused = await rig.running();
    const resumed = await rig.running();
    const stray = await rig.running();
    await rig.service.pause(resumed.id);
    await rig.service.stop(stray.id);
    await rig.provider.pause(paused.id);
    await rig.provider.unpause(resumed.id);
    await rig.provider.start(stray.id);
    const report = await rig.reconciler.runOnce();
    expect(report.adopted.sort()).toEqual([paused.id, resumed.id].sort());
    expect(report.stopped).toEqual([stray.id]);
    expect(await rig.state(paused.id)).toBe('paused');
    expect(await rig.state(resumed.id)).toBe('running');
    expect(await rig.state(stray.id)).toBe('stopped');
    expect((await rig.provider.inspect(stray.id)).status).toBe('exited');
  });

  it('an instance with no row is removed once older than orphanGraceSec; a deleted row loses its container', async () => {
    rig = await lifecycleRig({ orphanGraceSec: 30 });
    const orphan = newSandboxId();
    await rig.provider.prepareWorkspace(orphan, { identity: { uid: 170_001, gid: 170_001 } });
    await rig.provider.spawn({
      sandboxId: orphan,
      image: rig.config.images.node,
      env: {},
      resources: { cpus: 0.5, memoryMb: 128, pids: 64 },
      labels: {},
      ports: [],
      identity: { uid: 170_001, gid: 170_001 },
    });
    rig.clock.advance(29 * SEC);
    expect((await rig.reconciler.runOnce()).orphansRemoved).toEqual([]);
    rig.clock.advance(1 * SEC);
    expect((await rig.reconciler.runOnce()).orphansRemoved).toEqual([orphan]);
    expect((await rig.provider.inspect(orphan)).status).toBe('missing');

    // A row deleted while its container stayed (a destroy that failed): the container goes.
    const deleted = await rig.running();
    await rig.store.updateSandbox(deleted.id, { state: 'deleted', deletedAt: new Date().toISOString() });
    expect((await rig.reconciler.runOnce()).orphansRemoved).toEqual([deleted.id]);
    expect((await rig.provider.inspect(deleted.id)).status).toBe('missing');
  });

  it('a create a previous process left in creating is finished; a stop left in stopping too', async () => {
    rig = await lifecycleRig();
    const sb = await rig.running();
    await rig.provider.vanish(sb.id);
    // As a crash leaves it: the row says creating, the engine has nothing.
    await rig.store.updateSandbox(sb.id, { state: 'creating' });
    const stopping = await rig.running();
    await rig.store.updateSandbox(stopping.id, { state: 'stopping' });
    const report = await rig.reconciler.runOnce();
    expect(report.resumed).toEqual([sb.id]);
    expect(report.stopped).toEqual([stopping.id]);
    expect(await rig.state(sb.id)).toBe('running');
    expect((await rig.provider.inspect(sb.id)).status).toBe('running');
    expect(await rig.state(stopping.id)).toBe('stopped');
  });
});

describe('node scope', () => {
  it("rows of another node in the same store are left alone by every pass and don't count for capacity", async () => {
    rig = await lifecycleRig({ 'admission.maxRunning': 1, 'admission.minActiveSec': 60, orphanGraceSec: 0 });
    const own = await rig.running({ pauseAfterSec: 60, idleTimeoutSec: 300 });
    expect((await rig.store.getSandbox(own.id))?.node).toBe('local');
    // Another node's sandbox: idle for an hour, past its expiry, no container on this engine.
    const other = { ...own, id: newSandboxId(), node: 'other', containerId: 'elsewhere' };
    rig.clock.advance(3600 * SEC);
    other.expiresAt = new Date(rig.clock.now() - 1).toISOString();
    await rig.store.insertSandbox(other);

    expect(await rig.idleReaper.runOnce()).toEqual({ paused: [], stopped: [own.id] });
    expect(await rig.expiry.runOnce()).toEqual([]);
    const report = await rig.reconciler.runOnce();
    expect(Object.values(report).flat()).not.toContain(other.id);
    // The own slot is free again: another create is admitted although `other` is running.
    const next = await rig.running();
    expect(next.state).toBe('running');
    expect(await rig.service.stopIdle(other.id, () => true)).toBe(false);
    expect(await rig.service.giveWay(other.id, () => true)).toBe(false);
    expect(await rig.service.markLost(other.id, 'container missing')).toBe(false);

    const row = await rig.store.getSandbox(other.id);
    expect(row).toMatchObject({ state: 'running', node: 'other', expiresAt: other.expiresAt });
    expect(await rig.bus.history({ sandboxId: other.id })).toEqual([]);
  });

  it('a state change and its event are one write; a fenced node writes neither', async () => {
    const fence = { node: 'n1', epoch: 1 };
    rig = await lifecycleRig({}, { id: 'n1', fence: () => fence });
    await rig.store.acquireNode({
      id: 'n1',
      apiUrl: 'http://127.0.0.1:1',
      edgeUrl: 'http://127.0.0.1:2',
      labels: {},
      capacity: { memoryMb: 1024, maxRunning: 10 },
      usage: { memoryMb: 0, running: 0 },
      leaseMs: 60_000,
      now: new Date().toISOString(),
    });
    const sb = await rig.running();
    expect((await rig.store.getSandbox(sb.id))?.node).toBe('n1');
    const events = await rig.bus.history({ sandboxId: sb.id });
    expect(events.map((e) => [e.type, e.node])).toEqual([
      ['sandbox.created', 'n1'],
      ['sandbox.state', 'n1'],
      ['sandbox.state', 'n1'],
    ]);
    // Fenced off by another node: the stop is refused and nothing is written.
    await rig.store.fenceNode('n1', 1, new Date(Date.now() + 120_000).toISOString());
    await expect(rig.service.stop(sb.id)).rejects.toMatchObject({ code: 'node_fenced' });
    expect(await rig.state(sb.id)).toBe('running');
    expect(await rig.bus.history({ sandboxId: sb.id })).toHaveLength(3);
  });
});
