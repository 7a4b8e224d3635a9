/**
 * bench/idle-cost: what running-but-idle sandboxes cost the host while nobody uses them — the
 * CPU of previewd (its watchers: ports, app status, reconciler) and of the Docker engine — and
 * what usage sampling (src/usage, docs/usage.md) adds to it.
 *
 *   node --import tsx bench/idle-cost.ts [N=50] [--seconds 20] [--pairs 3] [--window 20]
 *
 * Creates N sandboxes with a tiny Node server on their declared port, waits until all run, lets
 * them settle for 5 s, then:
 * 1. reads the CPU time of this process (previewd runs in it) and of dockerd over `--seconds`
 *    from /proc, sampling on (its timer, usage.intervalSec);
 * 2. sampling off and on side by side: `--pairs` pairs of `--window`-second windows, off then on,
 *    previewd's CPU per second in each (process.cpuUsage: every thread of the process) and, in the
 *    on windows, the CPU time and wall time of each sample pass over the N sandboxes; medians.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startTestServer, waitState } from '../test/helpers/server.js';

const arg = (name: string, dflt: number) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? dflt : Number(process.argv[at + 1]);
};
const N = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 50);
const SECONDS = arg('--seconds', 20);
const PAIRS = arg('--pairs', 3);
const WINDOW = arg('--window', 20);

/** User + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const dockerd = Number(execFileSync('pidof', ['dockerd']).toString().trim().split(' ')[0]);
  const server = await startTestServer({ logLevel: 'silent', 'defaults.pauseAfterSec': 0 });
  const { sampler } = server.app.usage;
  try {
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const res = await server.call('POST', '/v1/sandboxes', {
        files: { 'server.js': "require('http').createServer((q, s) => s.end('ok')).listen(3000)" },
        runtime: { start: 'node server.js', port: 3000 },
        resources: { cpus: 0.5, memoryMb: 128, pids: 64, diskMb: 64 },
      });
      if (res.status !== 201) throw new Error(`create ${i}: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
    for (const id of ids) await waitState(server, id, 'running', 300_000);
    await sleep(5000);
    const before = [cpuSeconds(process.pid), cpuSeconds(dockerd)] as const;
    await sleep(SECONDS * 1000);
    const after = [cpuSeconds(process.pid), cpuSeconds(dockerd)] as const;
    const pct = (i: 0 | 1) => (((after[i] - before[i]) / SECONDS) * 100).toFixed(1);
    console.log(`\n${N} running idle sandboxes, ${SECONDS} s window (% of one core)`);
    console.log(`previewd (this process): ${pct(0)}%   dockerd: ${pct(1)}%`);
    console.log(
      `per sandbox: previewd ${(Number(pct(0)) / N).toFixed(2)}%, dockerd ${(Number(pct(1)) / N).toFixed(2)}%`,
    );

    // Sampling off vs on, side by side. The bench drives the passes itself in the on windows
    // (what the timer does), to time each one.
    await sampler.stop();
    const interval = sampler.intervalSec * 1000;
    const off: number[] = [];
    const on: number[] = [];
    const passCpuMs: number[] = [];
    const passWallMs: number[] = [];
    let sampled = 0;
    for (let p = 0; p < PAIRS; p++) {
      let t0 = performance.now();
      let c0 = cpuMicros();
      await sleep(WINDOW * 1000);
      off.push(((cpuMicros() - c0) / 1000 / (performance.now() - t0)) * 1000);
      t0 = performance.now();
      c0 = cpuMicros();
      while (performance.now() - t0 < WINDOW * 1000) {
        const start = performance.now();
        const c = cpuMicros();
        await sampler.sampleOnce();
        passCpuMs.push((cpuMicros() - c) / 1000);
        passWallMs.push(performance.now() - start);
        await sleep(Math.max(0, interval - (performance.now() - start)));
      }
      on.push(((cpuMicros() - c0) / 1000 / (performance.now() - t0)) * 1000);
      sampled = sampler.current().size;
    }
    const offMs = median(off);
    const onMs = median(on);
    console.log(
      `\nusage sampling, ${N} running sandboxes, every ${sampler.intervalSec} s, ${PAIRS} × ${WINDOW} s windows each (medians)`,
    );
    console.log(`sandboxes sampled per pass: ${sampled}`);
    console.log(
      `one sample pass: ${median(passCpuMs).toFixed(1)} ms CPU of previewd (${(median(passCpuMs) / N).toFixed(2)} ms per sandbox), ${median(passWallMs).toFixed(1)} ms wall`,
    );
    // A pass's CPU counts everything the process did meanwhile: minus the off rate over its wall time.
    const passNet = median(passCpuMs) - (offMs / 1000) * median(passWallMs);
    const perSec = (ms: number) => ms / sampler.intervalSec;
    console.log(
      `sampling's own cost: ${passNet.toFixed(1)} ms a pass (the pass minus the off rate over its wall time) = ${perSec(passNet).toFixed(2)} ms/s (${(perSec(passNet) / 10).toFixed(2)}% of one core); at most ${perSec(median(passCpuMs)).toFixed(2)} ms/s`,
    );
    console.log(
      `previewd CPU per second: off ${offMs.toFixed(2)} ms/s, on ${onMs.toFixed(2)} ms/s, sampling adds ${(onMs - offMs).toFixed(2)} ms/s (${((onMs - offMs) / 10).toFixed(2)}% of one core)`,
    );
  } finally {
    await server.close();
  }
}

await main();
