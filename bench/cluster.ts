/**
 * bench/cluster: a real two-node cluster on this machine (two Docker engines in their own network
 * namespaces, joined in a Swarm; PostgreSQL; two previewd nodes — test/helpers/cluster-*.ts), in
 * one run:
 *   1. create → running (p50/p95) and creates per second, with one node, then with two (the
 *      creates enter node 1; placement spreads them);
 *   2. preview latency to a sandbox on node 2, entering its own node's edge vs entering node 1's
 *      (forwarded), interleaved request by request, p50/p95.
 * Both nodes share this machine's two cores, so "two nodes" shows what forwarding and placement
 * cost, not the capacity two machines would add.
 *
 *   node --import tsx bench/cluster.ts [--creates 12] [--concurrency 4] [--requests 300]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClusterBed, startClusterHosts } from '../test/helpers/cluster-hosts.js';
import { PreviewdNode } from '../test/helpers/cluster-nodes.js';
import { type PostgresServer, startPostgres } from '../test/helpers/postgres.js';
import { printTable, summary } from './stats.js';

function flag(name: string, fallback: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return Math.min(i === -1 ? fallback : Number(process.argv[i + 1]), max);
}
const CREATES = flag('creates', 12, 40);
const CONCURRENCY = flag('concurrency', 4, 8);
const REQUESTS = flag('requests', 300, 2000);
const app = `require('http').createServer((q,s)=>s.end('ok')).listen(3000)`;

async function waitRunning(node: PreviewdNode, id: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const res = await node.call('GET', `/v1/sandboxes/${id}`);
    if (res.body?.state === 'running') return;
    if (res.body?.state === 'error') throw new Error(`sandbox ${id}: ${JSON.stringify(res.body.error)}`);
    if (Date.now() > deadline) throw new Error(`sandbox ${id} not running in 120 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CREATES creates entering `via`, CONCURRENCY at a time; each timed from POST to running. */
interface Round {
  times: number[];
  perSec: number;
  ids: string[];
  nodes: Map<string, number>;
  /** create → running per node the create was placed on. */
  byNode: Map<string, number[]>;
}

async function createRound(via: PreviewdNode): Promise<Round> {
  const times: number[] = [];
  const byNode = new Map<string, number[]>();
  const ids: string[] = [];
  const nodes = new Map<string, number>();
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < CREATES) {
      next += 1;
      const start = performance.now();
      const res = await via.call('POST', '/v1/sandboxes', {
        runtime: { start: `node -e "${app}"`, port: 3000 },
        idleTimeoutSec: 0,
        pauseAfterSec: 0,
      });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
      await waitRunning(via, res.body.id);
      const took = performance.now() - start;
      times.push(took);
      byNode.set(res.body.node, [...(byNode.get(res.body.node) ?? []), took]);
      ids.push(res.body.id);
      nodes.set(res.body.node, (nodes.get(res.body.node) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { times, perSec: CREATES / seconds, ids, nodes, byNode };
}

async function removeAll(via: PreviewdNode, ids: string[]): Promise<void> {
  for (const id of ids) await via.call('DELETE', `/v1/sandboxes/${id}`);
}

let bed: ClusterBed | undefined;
let pg: PostgresServer | undefined;
const root = mkdtempSync(join(tmpdir(), 'previewd-bench-cluster-'));
const nodes: PreviewdNode[] = [];
try {
  console.log('starting the bed (two engines in a Swarm), PostgreSQL and node 1…');
  bed = await startClusterHosts({
    count: 2,
    images: ['previewd/runtime-node:22', 'previewd/base:bookworm'],
    swarm: true,
  });
  pg = await startPostgres({ listen: ['127.0.0.1', bed.bridgeAddress] });
  const databaseUrl = pg.urlFor('previewd', bed.bridgeAddress);
  const [n1, n2] = bed.hosts.map(
    (h) => new PreviewdNode(h, { databaseUrl, leaseTtlSec: 10, heartbeatSec: 1 }, root),
  );
  nodes.push(n1!, n2!);
  await n1!.start();

  const one = await createRound(n1!);
  await removeAll(n1!, one.ids);
  console.log('starting node 2…');
  await n2!.start();
  // Both nodes' leases and usage in the store before the round.
  await new Promise((r) => setTimeout(r, 2500));
  const two = await createRound(n1!);
  const spread = [...two.nodes].map(([n, c]) => `${n}:${c}`).join(' ');
  await removeAll(n1!, two.ids);
  const s1 = summary(one.times);
  const s2 = summary(two.times);
  printTable(`create → running (${CREATES} creates, ${CONCURRENCY} at a time, entering node 1)`, [
    {
      nodes: 1,
      p50_ms: s1.p50,
      p95_ms: s1.p95,
      creates_per_s: one.perSec,
      placed: [...one.nodes].map(([n, c]) => `${n}:${c}`).join(' '),
    },
    { nodes: 2, p50_ms: s2.p50, p95_ms: s2.p95, creates_per_s: two.perSec, placed: spread },
    ...[...two.byNode].map(([node, t]) => ({
      nodes: `2: on ${node}`,
      p50_ms: summary(t).p50,
      p95_ms: summary(t).p95,
      creates_per_s: '',
      placed: node === n1!.id ? 'local create' : 'forwarded create',
    })),
  ]);

  const target = await n1!.call('POST', '/v1/sandboxes', {
    runtime: { start: `node -e "${app}"`, port: 3000 },
    placement: { node: n2!.id },
    idleTimeoutSec: 0,
    pauseAfterSec: 0,
  });
  await waitRunning(n2!, target.body.id);
  const own: number[] = [];
  const other: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    for (const [via, into] of [
      [n2!, own],
      [n1!, other],
    ] as const) {
      const t = performance.now();
      const res = await via.preview(target.body.id, 3000, '/');
      if (res.status !== 200 || res.body !== 'ok') throw new Error(`preview via ${via.id}: ${res.status}`);
      into.push(performance.now() - t);
    }
  }
  const so = summary(own);
  const sx = summary(other);
  printTable(`preview latency to a sandbox on node 2 (${REQUESTS} requests each, interleaved)`, [
    { entering: 'its own node (node 2)', p50_ms: so.p50, p95_ms: so.p95 },
    { entering: 'the other node (node 1, forwarded)', p50_ms: sx.p50, p95_ms: sx.p95 },
    { entering: 'ratio other/own (p50)', p50_ms: sx.p50 / so.p50, p95_ms: sx.p95 / so.p95 },
  ]);
} finally {
  await Promise.all(nodes.map((n) => n.kill()));
  await bed?.stop();
  await pg?.stop();
  for (const n of nodes) await n.remove();
  rmSync(root, { recursive: true, force: true });
}
