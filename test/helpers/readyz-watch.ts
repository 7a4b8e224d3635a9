import { expect } from 'vitest';

export interface ReadyzReport {
  /** The longest time one /readyz took to answer, in ms. */
  longest: number;
  polls: number;
  failures: string[];
}

/**
 * Polls `<url>/readyz` every ~50 ms until stopped, timing each answer. The server under test runs
 * in this process, so anything that blocks its event loop (or its file threads, for a readiness
 * check that touches them) shows up as a long wait here.
 */
export function watchReadyz(url: string): { stop(): Promise<ReadyzReport> } {
  let running = true;
  const report: ReadyzReport = { longest: 0, polls: 0, failures: [] };
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        if (res.status !== 200) report.failures.push(`status ${res.status}`);
      } catch (err) {
        report.failures.push(String(err));
      }
      report.longest = Math.max(report.longest, performance.now() - started);
      report.polls++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return report;
    },
  };
}

/** The longest /readyz wait seen by every `whileWatched` of this test file. */
export const readyzSeen = { longest: 0, label: '' };

/**
 * Runs `work` while /readyz is polled; asserts that every poll answered 200 within `boundMs` (a
 * generous bound: it shows that nothing blocked, it is not a benchmark) and logs the longest wait.
 */
export async function whileWatched<T>(
  url: string,
  label: string,
  work: () => Promise<T>,
  boundMs = 1000,
): Promise<T> {
  const watch = watchReadyz(url);
  await new Promise((r) => setTimeout(r, 120));
  let result: T;
  try {
    result = await work();
  } finally {
    const report = await watch.stop();
    console.log(`[readyz] ${label}: longest wait ${report.longest.toFixed(1)} ms over ${report.polls} polls`);
    if (report.longest > readyzSeen.longest) Object.assign(readyzSeen, { longest: report.longest, label });
    expect(report.failures).toEqual([]);
    // At least one poll answered while the work ran (a loaded machine may fit only one).
    expect(report.polls).toBeGreaterThanOrEqual(1);
    expect(report.longest).toBeLessThan(boundMs);
  }
  return result;
}
