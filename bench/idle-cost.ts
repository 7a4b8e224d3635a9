/**
 * bench/idle-cost: what running-but-idle sandboxes cost the host while nobody uses them — the
 * CPU of previewd (its watchers: ports, app status, reconciler) and of the Docker engine.
 *
 *   node --import tsx bench/idle-cost.ts [N=20] [--seconds 20]
 *
 * Creates N sandboxes with a tiny Node server on their declared port, waits until all run, lets
 * them settle for 5 s, then reads the CPU time of this process (previewd runs in it) and of
 * dockerd over the window from /proc.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startTestServer, waitState } from '../test/helpers/server.js';

const N = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 20);
const secondsAt = process.argv.indexOf('--seconds');
const SECONDS = secondsAt === -1 ? 20 : Number(process.argv[secondsAt + 1]);

/** User + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const dockerd = Number(execFileSync('pidof', ['dockerd']).toString().trim().split(' ')[0]);
  const server = await startTestServer({ logLevel: 'silent', 'defaults.pauseAfterSec': 0 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const res = await server.call('POST', '/v1/sandboxes', {
        files: { 'server.js': "require('http').createServer((q, s) => s.end('ok')).listen(3000)" },
        runtime: { start: 'node server.js', port: 3000 },
      });
      ids.push(res.body.id);
    }
    for (const id of ids) await waitState(server, id, 'running', 180_000);
    await new Promise((r) => setTimeout(r, 5000));
    const before = [cpuSeconds(process.pid), cpuSeconds(dockerd)] as const;
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const after = [cpuSeconds(process.pid), cpuSeconds(dockerd)] as const;
    const pct = (i: 0 | 1) => (((after[i] - before[i]) / SECONDS) * 100).toFixed(1);
    console.log(`\n${N} running idle sandboxes, ${SECONDS} s window (% of one core)`);
    console.log(`previewd (this process): ${pct(0)}%   dockerd: ${pct(1)}%`);
    console.log(
      `per sandbox: previewd ${(Number(pct(0)) / N).toFixed(2)}%, dockerd ${(Number(pct(1)) / N).toFixed(2)}%`,
    );
  } finally {
    await server.close();
  }
}

await main();
