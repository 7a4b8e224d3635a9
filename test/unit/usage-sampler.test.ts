import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { SampleRing } from '../../src/usage/sample-ring.js';
import { UsageSampler } from '../../src/usage/sampler.js';
import { pickExported, registerUsageMetrics } from '../../src/usage/usage-metrics.js';
import type { UsageReading, UsageSource, UsageTarget } from '../../src/usage/usage-source.js';

/** A source whose counters the test sets; records which sandboxes were read. */
class FakeSource implements UsageSource {
  readonly readings = new Map<string, UsageReading | undefined>();
  readonly reads: string[] = [];
  readonly forgotten: string[] = [];

  set(id: string, r: Partial<UsageReading>): void {
    const prev = this.readings.get(id) ?? { cpuNs: 0, memoryMb: 0, diskMb: 0, netRxBytes: 0, netTxBytes: 0 };
    this.readings.set(id, { ...prev, ...r });
  }

  async read(target: UsageTarget): Promise<UsageReading | undefined> {
    this.reads.push(target.sandboxId);
    return this.readings.get(target.sandboxId);
  }

  forget(id: string): void {
    this.forgotten.push(id);
  }
}

function rig(opts: { intervalSec?: number; retentionSec?: number } = {}) {
  const clock = new ManualClock('2026-12-01T12:00:00Z');
  const source = new FakeSource();
  let targets: UsageTarget[] = [];
  const sampler = new UsageSampler({
    source,
    clock,
    targets: async () => targets,
    intervalSec: opts.intervalSec ?? 10,
    retentionSec: opts.retentionSec ?? 3600,
  });
  return {
    clock,
    source,
    sampler,
    run: (...ids: Array<string | [string, string]>) => {
      targets = ids.map((t) =>
        typeof t === 'string'
          ? { sandboxId: t, containerId: `c-${t}` }
          : { sandboxId: t[0], containerId: t[1] },
      );
    },
  };
}

const SEC = 1_000;
const CORE_NS_PER_SEC = 1e9;

describe('usage sampler', () => {
  it('takes the first reading as a baseline and counts CPU of one core over the interval', async () => {
    const { clock, source, sampler, run } = rig();
    run('a');
    source.set('a', {
      cpuNs: 5 * CORE_NS_PER_SEC,
      memoryMb: 84.24,
      diskMb: 31,
      netRxBytes: 100,
      netTxBytes: 200,
    });
    await sampler.sampleOnce();
    expect(sampler.samples('a')).toEqual([]);
    clock.advance(10 * SEC);
    // 7.5 s of CPU in 10 s: 75 % of one core.
    source.set('a', { cpuNs: 12.5 * CORE_NS_PER_SEC, netRxBytes: 1234, netTxBytes: 5678 });
    await sampler.sampleOnce();
    clock.advance(10 * SEC);
    // Two cores busy: 200 %.
    source.set('a', { cpuNs: 32.5 * CORE_NS_PER_SEC });
    await sampler.sampleOnce();
    expect(sampler.samples('a')).toEqual([
      {
        at: Date.parse('2026-12-01T12:00:10Z'),
        cpuPercent: 75,
        memoryMb: 84.2,
        diskMb: 31,
        netRxBytes: 1234,
        netTxBytes: 5678,
      },
      expect.objectContaining({ at: Date.parse('2026-12-01T12:00:20Z'), cpuPercent: 200 }),
    ]);
  });

  it("since filters (exclusive), so the last sample's time asks only for newer ones", async () => {
    const { clock, source, sampler, run } = rig();
    run('a');
    for (let i = 0; i < 5; i++) {
      source.set('a', { cpuNs: i * CORE_NS_PER_SEC });
      await sampler.sampleOnce();
      clock.advance(10 * SEC);
    }
    const all = sampler.samples('a');
    expect(all.map((s) => s.cpuPercent)).toEqual([10, 10, 10, 10]);
    const second = all[1]!.at;
    expect(sampler.samples('a', second).map((s) => s.at)).toEqual([all[2]!.at, all[3]!.at]);
    expect(sampler.samples('a', second - 1).map((s) => s.at)).toEqual([second, all[2]!.at, all[3]!.at]);
    expect(sampler.samples('a', clock.now())).toEqual([]);
  });

  it('keeps retentionSec per sandbox in a bounded ring', async () => {
    const { clock, source, sampler, run } = rig({ intervalSec: 10, retentionSec: 60 });
    run('a');
    for (let i = 0; i <= 100; i++) {
      source.set('a', { cpuNs: i * CORE_NS_PER_SEC });
      await sampler.sampleOnce();
      clock.advance(10 * SEC);
    }
    const kept = sampler.samples('a');
    // The last 60 s: samples at now-60s (exclusive) … now-10s.
    expect(kept.length).toBe(6);
    expect(kept.at(-1)!.at).toBe(clock.now() - 10 * SEC);
    expect(kept[0]!.at).toBe(clock.now() - 60 * SEC);
  });

  it('starts from a new baseline when the container changed or its counters went back', async () => {
    const { clock, source, sampler, run } = rig();
    run(['a', 'c1']);
    source.set('a', { cpuNs: 50 * CORE_NS_PER_SEC });
    await sampler.sampleOnce();
    clock.advance(10 * SEC);
    run(['a', 'c2']); // restarted: a new container, counters from 0
    source.set('a', { cpuNs: 1 * CORE_NS_PER_SEC });
    await sampler.sampleOnce();
    expect(sampler.samples('a')).toEqual([]);
    clock.advance(10 * SEC);
    source.set('a', { cpuNs: 3 * CORE_NS_PER_SEC });
    await sampler.sampleOnce();
    expect(sampler.samples('a').map((s) => s.cpuPercent)).toEqual([20]);
    clock.advance(10 * SEC);
    source.set('a', { cpuNs: 2 * CORE_NS_PER_SEC }); // went back (cgroup recreated): no negative CPU
    await sampler.sampleOnce();
    expect(sampler.samples('a').map((s) => s.cpuPercent)).toEqual([20]);
  });

  it('reads each running sandbox once per pass, and a stopped one not at all', async () => {
    const { clock, source, sampler, run } = rig();
    run('a', 'b');
    source.set('a', {});
    source.set('b', {});
    await sampler.sampleOnce();
    clock.advance(10 * SEC);
    run('a');
    await sampler.sampleOnce();
    expect(source.reads).toEqual(['a', 'b', 'a']);
  });

  it('a stopped sandbox keeps its samples for the retention, then they are dropped; a deleted one at once', async () => {
    const { clock, source, sampler, run } = rig({ intervalSec: 10, retentionSec: 60 });
    run('a', 'b');
    for (let i = 0; i < 3; i++) {
      source.set('a', { cpuNs: i * CORE_NS_PER_SEC });
      source.set('b', { cpuNs: i * CORE_NS_PER_SEC });
      await sampler.sampleOnce();
      clock.advance(10 * SEC);
    }
    run();
    await sampler.sampleOnce();
    expect(sampler.samples('a').length).toBe(2);
    // Stopped: no present value for Prometheus, but history for the chart.
    expect(sampler.current().size).toBe(0);
    sampler.forget('b');
    expect(sampler.samples('b')).toEqual([]);
    expect(source.forgotten).toContain('b');
    clock.advance(60 * SEC);
    await sampler.sampleOnce();
    expect(sampler.samples('a')).toEqual([]);
    expect(sampler.trackedCount).toBe(0);
  });

  it('a read that fails leaves a gap and a new baseline, not a wrong CPU figure', async () => {
    const { clock, source, sampler, run } = rig();
    run('a');
    source.set('a', { cpuNs: 0 });
    await sampler.sampleOnce();
    clock.advance(10 * SEC);
    source.readings.set('a', undefined);
    await sampler.sampleOnce();
    clock.advance(10 * SEC);
    source.set('a', { cpuNs: 30 * CORE_NS_PER_SEC });
    await sampler.sampleOnce();
    expect(sampler.samples('a')).toEqual([]);
    clock.advance(10 * SEC);
    source.set('a', { cpuNs: 31 * CORE_NS_PER_SEC });
    await sampler.sampleOnce();
    expect(sampler.samples('a').map((s) => s.cpuPercent)).toEqual([10]);
  });

  it('a pass asked for while one runs is that same pass', async () => {
    const { source, sampler, run } = rig();
    run('a');
    source.set('a', {});
    await Promise.all([sampler.sampleOnce(), sampler.sampleOnce()]);
    expect(source.reads).toEqual(['a']);
  });
});

describe('sample ring', () => {
  it('overwrites the oldest past its capacity and finds samples after a time', () => {
    const ring = new SampleRing(3);
    for (let i = 1; i <= 5; i++)
      ring.push({ at: i, cpuPercent: i, memoryMb: 0, diskMb: 0, netRxBytes: 0, netTxBytes: 0 });
    expect(ring.size).toBe(3);
    expect(ring.after(0).map((s) => s.at)).toEqual([3, 4, 5]);
    expect(ring.after(3).map((s) => s.at)).toEqual([4, 5]);
    expect(ring.after(5)).toEqual([]);
    expect(ring.newest()?.cpuPercent).toBe(5);
  });
});

describe('Prometheus series per sandbox', () => {
  const sample = (memoryMb: number) => ({
    at: 0,
    cpuPercent: 1,
    memoryMb,
    diskMb: 2,
    netRxBytes: 10,
    netTxBytes: 20,
  });

  it('exports all when within the bound, else the top N by memory', () => {
    const current = new Map([
      ['a', sample(10)],
      ['b', sample(300)],
      ['c', sample(20)],
      ['d', sample(300)],
    ]);
    expect(pickExported(current, 5)).toEqual({ exported: [...current], dropped: 0 });
    const picked = pickExported(current, 2);
    expect(picked.exported.map(([id]) => id)).toEqual(['b', 'd']);
    expect(picked.dropped).toBe(2);
  });

  it('registers gauges, net counters and the dropped gauge, bounded', async () => {
    const registry = new Registry();
    const current = new Map(Array.from({ length: 7 }, (_, i) => [`s${i}`, sample(i * 10)] as const));
    registerUsageMetrics(registry, { current: () => new Map(current) }, 3);
    const text = await registry.metrics();
    const memory = text.split('\n').filter((l) => l.startsWith('previewd_sandbox_memory_mb{'));
    expect(memory.sort()).toEqual([
      'previewd_sandbox_memory_mb{sandbox="s4"} 40',
      'previewd_sandbox_memory_mb{sandbox="s5"} 50',
      'previewd_sandbox_memory_mb{sandbox="s6"} 60',
    ]);
    expect(text).toContain('previewd_sandbox_series_dropped 4');
    expect(text).toContain('# TYPE previewd_sandbox_net_tx_bytes_total counter');
    expect(text).toContain('previewd_sandbox_net_tx_bytes_total{sandbox="s6"} 20');
    expect(text.split('\n').filter((l) => l.startsWith('previewd_sandbox_cpu_percent{')).length).toBe(3);
    // A sandbox that left (stopped, deleted) leaves the series at the next scrape.
    current.clear();
    const after = await registry.metrics();
    expect(after).not.toContain('sandbox="s6"');
    expect(after).toContain('previewd_sandbox_series_dropped 0');
  });
});
