import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PostgresStore } from '../../src/store/postgres.js';
import { type ClusterBed, startClusterHosts } from '../helpers/cluster-hosts.js';
import { NODE_EDGE_PORT, PreviewdNode } from '../helpers/cluster-nodes.js';
import { upstreamApp } from '../helpers/edge.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres.js';
import { TEST_KEY, waitFor } from '../helpers/server.js';

/**
 * Issue #15 with real parts: two Docker engines, each in its own network namespace, joined in a
 * Swarm; PostgreSQL on the bridge; two previewd nodes, one per engine. The tests run in order on
 * one bed (creating it takes most of a minute); node death comes last.
 */
const LEASE_TTL_SEC = 4;
const IMAGES = ['previewd/runtime-node:22', 'previewd/base:bookworm'];

let bed: ClusterBed;
let pg: PostgresServer;
/** The cluster's store, read directly only to know where the event feed ends now. */
let store: PostgresStore;
let root: string;
let n1: PreviewdNode;
let n2: PreviewdNode;
/** Sandboxes made here: id → the node that holds it. */
const made = new Map<string, string>();

async function createApp(via: PreviewdNode, extra: Record<string, unknown> = {}) {
  const res = await via.call('POST', '/v1/sandboxes', {
    files: { 'server.js': upstreamApp },
    runtime: { start: 'node server.js', port: 3000 },
    ...extra,
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  made.set(res.body.id, res.body.node);
  return res.body as { id: string; node: string; state: string };
}

async function waitState(via: PreviewdNode, id: string, state: string, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const res = await via.call('GET', `/v1/sandboxes/${id}`);
      if (res.body?.state === 'error' && state !== 'error') {
        throw new Error(`sandbox ${id} is in error: ${JSON.stringify(res.body.error)}`);
      }
      return res.body?.state === state ? res.body : undefined;
    },
    timeoutMs,
    `sandbox ${id} ${state}`,
  );
}

/**
 * Every event the node's feed (`/v1/events`, NDJSON) shows, from the first up to the last one the
 * store holds now (read from PostgreSQL directly, so the read has an end).
 */
async function events(via: PreviewdNode, sandboxId?: string, upTo?: number): Promise<any[]> {
  const last =
    upTo !== undefined
      ? upTo
      : sandboxId
        ? ((await store.listEvents({ sandboxId, limit: 10_000 })).at(-1)?.id ?? 0)
        : await store.lastEventId();
  if (last === 0) return [];
  const path = sandboxId ? `/v1/sandboxes/${sandboxId}/events` : '/v1/events';
  const res = await request(`${via.apiUrl}${path}?lastEventId=0`, {
    headers: { authorization: `Bearer ${TEST_KEY}`, accept: 'application/x-ndjson' },
  });
  if (res.statusCode !== 200) throw new Error(`events: ${res.statusCode} ${await res.body.text()}`);
  const out: any[] = [];
  let partial = '';
  const deadline = setTimeout(() => res.body.destroy(new Error('events feed stalled')), 20_000);
  try {
    for await (const chunk of res.body) {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        const e = JSON.parse(line);
        if (typeof e.id !== 'number') continue; // keep-alive
        if (e.id > last) return out;
        out.push(e);
        if (e.id === last) return out;
      }
    }
  } finally {
    clearTimeout(deadline);
    res.body.destroy();
  }
  return out;
}

function wsThrough(node: PreviewdNode, id: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${node.host.address}:${NODE_EDGE_PORT}/ws`, {
      headers: { host: `3000-${id}.preview.localhost:${NODE_EDGE_PORT}` },
    });
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}

beforeAll(async () => {
  bed = await startClusterHosts({ count: 2, images: IMAGES, swarm: true, heartbeatSec: 1 });
  const [h1, h2] = bed.hosts;
  await h1!.docker(['node', 'update', '--label-add', 'zone=a', h1!.name]);
  await h1!.docker(['node', 'update', '--label-add', 'zone=b', h2!.name]);
  pg = await startPostgres({ listen: ['127.0.0.1', bed.bridgeAddress] });
  root = mkdtempSync(join(tmpdir(), 'previewd-cluster-nodes-'));
  const databaseUrl = pg.urlFor('previewd', bed.bridgeAddress);
  store = new PostgresStore({ url: pg.url });
  n1 = new PreviewdNode(h1!, { databaseUrl, leaseTtlSec: LEASE_TTL_SEC }, root);
  n2 = new PreviewdNode(h2!, { databaseUrl, leaseTtlSec: LEASE_TTL_SEC }, root);
  // One at a time: both run the migrations, under the store's advisory lock.
  await Promise.all([n1.start(), n2.start()]);
}, 300_000);

afterAll(async () => {
  await Promise.all([n1?.kill(), n2?.kill()]);
  await store?.close();
  await bed?.stop();
  await pg?.stop();
  for (const n of [n1, n2]) await n?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
}, 180_000);

describe('a cluster of two previewd nodes on a Docker Swarm', () => {
  it('registers both nodes with leases and the Swarm labels', async () => {
    const listed = await waitFor(
      async () => {
        const res = await n2.call('GET', '/v1/nodes');
        const nodes: any[] = res.body?.nodes ?? [];
        const ok =
          nodes.length === 2 &&
          nodes.every((n) => n.live && n.labels.zone && n.labels['swarm.state'] === 'ready');
        return ok ? res.body : undefined;
      },
      20_000,
      'both nodes live with Swarm labels',
    );
    expect(listed.cluster).toBe(true);
    expect(listed.self).toBe(n2.id);
    const byId = new Map(listed.nodes.map((n: any) => [n.id, n]));
    expect((byId.get(n1.id) as any).labels.zone).toBe('a');
    expect((byId.get(n2.id) as any).labels.zone).toBe('b');
    expect((byId.get(n1.id) as any).apiUrl).toBe(n1.apiUrl);
  });

  it('spreads creates over both nodes and honours placement by node and by label', async () => {
    const spread = [];
    for (let i = 0; i < 4; i++) spread.push(await createApp(i % 2 === 0 ? n1 : n2));
    const counts = new Map<string, number>();
    for (const s of spread) counts.set(s.node, (counts.get(s.node) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual([n1.id, n2.id].sort());
    const byLabel = await createApp(n1, { placement: { labels: { zone: 'b' } } });
    expect(byLabel.node).toBe(n2.id);
    const byNode = await createApp(n2, { placement: { node: n1.id } });
    expect(byNode.node).toBe(n1.id);
    const none = await n1.call('POST', '/v1/sandboxes', {
      files: { 'index.html': 'x' },
      placement: { labels: { zone: 'nowhere' } },
    });
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('placement_unsatisfiable');
    for (const s of [...spread, byLabel, byNode]) await waitState(n1, s.id, 'running');
  });

  it('answers any API call on either node: state, files, exec, and the exec WebSocket', async () => {
    const onTwo = [...made].find(([, node]) => node === n2.id)![0];
    // The node-to-node door takes only the cluster's credential: a forged one is refused even
    // beside a right key, and a caller header without it is not believed.
    const admin = Buffer.from(JSON.stringify({ keyId: 'x', role: 'admin', via: 'key' })).toString(
      'base64url',
    );
    for (const headers of [
      { 'x-previewd-node-auth': 'forged', 'x-previewd-node-caller': admin },
      {
        'x-previewd-node-auth': 'forged',
        'x-previewd-node-caller': admin,
        authorization: `Bearer ${TEST_KEY}`,
      },
    ]) {
      const forged = await request(`${n1.apiUrl}/v1/sandboxes/${onTwo}/files?path=notes`, { headers });
      await forged.body.dump();
      expect(forged.statusCode).toBe(401);
    }
    const got = await n1.call('GET', `/v1/sandboxes/${onTwo}`);
    expect(got.status).toBe(200);
    expect(got.body.node).toBe(n2.id);
    // A raw upload through the forwarding node (the body is streamed on to the owner).
    const put = await request(`${n1.apiUrl}/v1/sandboxes/${onTwo}/files?path=notes/hello.txt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/octet-stream' },
      body: 'written through node 1',
    });
    expect(put.statusCode).toBe(200);
    // Answered by the node that holds the sandbox.
    expect(put.headers['x-previewd-node']).toBe(n2.id);
    await put.body.dump();
    const read = await request(`${n2.apiUrl}/v1/sandboxes/${onTwo}/files?path=notes/hello.txt`, {
      headers: { authorization: `Bearer ${TEST_KEY}` },
    });
    expect(await read.body.text()).toBe('written through node 1');
    const exec = await n1.call('POST', `/v1/sandboxes/${onTwo}/exec`, { cmd: ['cat', 'notes/hello.txt'] });
    expect(exec.status).toBe(200);
    expect(exec.body.stdout).toBe('written through node 1');
    // The exec WebSocket: the key as a subprotocol, upgraded on node 1, served by node 2.
    const ws = new WebSocket(`ws://${n1.host.address}:7070/v1/sandboxes/${onTwo}/exec/ws`, [
      'previewd',
      `previewd.key.${TEST_KEY}`,
    ]);
    const output = await new Promise<string>((resolve, reject) => {
      let text = '';
      ws.once('open', () => ws.send(JSON.stringify({ type: 'start', cmd: ['cat', 'notes/hello.txt'] })));
      ws.on('message', (data) => {
        text += data.toString();
      });
      ws.once('close', () => resolve(text));
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
    expect(output).toContain('written through node 1');
  });

  it('serves a preview entering either edge, HTTP and WebSocket, with the access log whole on the owner', async () => {
    const onTwo = [...made].find(([, node]) => node === n2.id)![0];
    for (const via of [n1, n2]) {
      const res = await via.preview(onTwo, 3000, '/echo');
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).sandbox).toBe(onTwo);
      const ws = await wsThrough(via, onTwo);
      const echoed = await new Promise<string>((resolve) => {
        ws.once('message', (d) => resolve(d.toString()));
        ws.send('ping across nodes');
      });
      expect(echoed).toContain('ping across nodes');
      ws.close();
    }
    const log = await n1.call('GET', `/v1/sandboxes/${onTwo}/access-log`);
    expect(log.status).toBe(200);
    const paths = (log.body.entries ?? log.body.requests ?? []).map((e: any) => e.path);
    expect(paths.filter((p: string) => p === '/echo').length).toBeGreaterThanOrEqual(2);
  });

  it('wakes a sleeping sandbox once for 50 concurrent requests spread over both edges', async () => {
    const onOne = [...made].find(([, node]) => node === n1.id)![0];
    expect((await n2.call('POST', `/v1/sandboxes/${onOne}/stop`)).status).toBe(200);
    await waitState(n2, onOne, 'stopped');
    const before = (await events(n2, onOne)).length;
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? n1 : n2).preview(onOne, 3000, `/echo?i=${i}`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    const after = (await events(n2, onOne)).slice(before);
    const starts = after.filter((e) => e.type === 'sandbox.state' && e.data.to === 'starting');
    expect(starts).toHaveLength(1);
  });

  it('never manages one sandbox from two nodes: twenty seconds of both reconcilers every second (20 passes each)', async () => {
    const startId = await store.lastEventId();
    const soakMs = 20_000;
    const until = Date.now() + soakMs;
    const containersOf = async (host: (typeof bed.hosts)[number]) =>
      (
        await host.docker([
          'ps',
          '-a',
          '--filter',
          'label=previewd.managed=true',
          '--format',
          '{{.Label "previewd.sandbox"}}',
        ])
      )
        .split('\n')
        .filter(Boolean);
    let checks = 0;
    while (Date.now() < until) {
      const [on1, on2] = await Promise.all([containersOf(bed.hosts[0]!), containersOf(bed.hosts[1]!)]);
      for (const [id, holder] of made) {
        // A sandbox's container is on its own node's engine only.
        expect({ id, on1: on1.includes(id), on2: on2.includes(id) }).toEqual({
          id,
          on1: holder === n1.id,
          on2: holder === n2.id,
        });
      }
      checks += 1;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(checks).toBeGreaterThan(10);
    // Nothing changed state meanwhile: no reconciler took another node's sandbox for lost or stray.
    const during = (await store.listEvents({ afterId: startId, limit: 10_000 })).filter(
      (e) => e.type === 'sandbox.state' || e.type === 'sandbox.lost',
    );
    expect(during.map((e) => [e.sandboxId, e.type, (e.data as { to?: string }).to, e.node])).toEqual([]);
  }, 120_000);

  it('shows every node’s events on either node, in id order, and no node ever wrote about another’s sandbox', async () => {
    // Both feeds up to the same event (others keep being written meanwhile).
    const upTo = await store.lastEventId();
    const [e1, e2] = await Promise.all([events(n1, undefined, upTo), events(n2, undefined, upTo)]);
    expect(e1.at(-1)?.id).toBe(upTo);
    expect(e1.map((e) => e.id)).toEqual(e2.map((e) => e.id));
    const ids = e1.map((e) => e.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const nodesSeen = new Set(e1.map((e) => e.node));
    expect(nodesSeen.has(n1.id) && nodesSeen.has(n2.id)).toBe(true);
    // Both reconcilers have run every second since the start: every event about a sandbox came
    // from the node that holds it.
    for (const e of e1) {
      const holder = made.get(e.sandboxId);
      if (holder)
        expect({ id: e.sandboxId, type: e.type, node: e.node }).toEqual({
          id: e.sandboxId,
          type: e.type,
          node: holder,
        });
    }
  });

  it('restarts one node, then the other, without a 5xx for sandboxes on the node that stays', async () => {
    const onOne = [...made].find(([, node]) => node === n1.id)![0];
    const onTwo = [...made].find(([, node]) => node === n2.id)![0];
    for (const [restarting, staying, sandbox] of [
      [n1, n2, onTwo],
      [n2, n1, onOne],
    ] as const) {
      await waitState(staying, sandbox, 'running');
      const statuses: number[] = [];
      let done = false;
      const poll = (async () => {
        while (!done) {
          // A refused or cut connection counts as a failure too (-1).
          const [api, preview] = await Promise.all([
            staying.call('GET', `/v1/sandboxes/${sandbox}`).then(
              (r) => r.status,
              () => -1,
            ),
            staying.preview(sandbox, 3000, '/echo').then(
              (r) => r.status,
              () => -1,
            ),
          ]);
          statuses.push(api, preview);
        }
      })();
      await restarting.stop();
      await restarting.start();
      done = true;
      await poll;
      expect(statuses.length).toBeGreaterThan(4);
      expect(statuses.filter((s) => s >= 500 || s < 0)).toEqual([]);
    }
  }, 240_000);

  it('fences a node frozen past its lease: its sandboxes are marked lost once, and its stale lease is refused', async () => {
    // Node 2's sandboxes, running again after the rolling restart (its reconciler may still be
    // starting them on a loaded host).
    const onTwo = await waitFor(
      async () => {
        const running: string[] = [];
        for (const [id, node] of made) {
          if (node === n2.id && (await n1.call('GET', `/v1/sandboxes/${id}`)).body.state === 'running')
            running.push(id);
        }
        return running.length > 0 ? running : undefined;
      },
      60_000,
      "node 2's sandboxes running",
    );
    expect(onTwo.length).toBeGreaterThan(0);
    const epochBefore = (await n1.call('GET', '/v1/nodes')).body.nodes.find((n: any) => n.id === n2.id).epoch;
    n2.signal('SIGSTOP');
    const frozeAt = Date.now();
    let lost: number;
    try {
      lost = await waitFor(
        async () => {
          const rows = await Promise.all(onTwo.map((id) => n1.call('GET', `/v1/sandboxes/${id}`)));
          return rows.every((r) => r.body?.state === 'error' && r.body.error?.code === 'sandbox_lost')
            ? Date.now()
            : undefined;
        },
        LEASE_TTL_SEC * 1000 + 15_000,
        'the frozen node’s sandboxes marked lost',
      );
      console.log(
        `[cluster] frozen node's sandboxes lost ${lost - frozeAt} ms after SIGSTOP (lease ${LEASE_TTL_SEC} s)`,
      );
    } finally {
      n2.signal('SIGCONT');
    }
    // Its first heartbeat after the freeze is refused (stale epoch): it registers again.
    await waitFor(
      async () => (n2.logLines.some((l) => l.includes('node lease lost')) ? true : undefined),
      15_000,
      'the resumed node’s renewal refused',
    );
    const after = await waitFor(async () => {
      const node = (await n1.call('GET', '/v1/nodes')).body.nodes.find((n: any) => n.id === n2.id);
      return node?.live && node.epoch > epochBefore + 1 ? node : undefined;
    }, 15_000);
    expect(after.status).toBe('up');
    for (const id of onTwo) {
      const lostEvents = (await events(n1, id)).filter((e) => e.type === 'sandbox.lost');
      expect(lostEvents).toHaveLength(1);
      // Nothing the resumed node knew before the freeze undid the marking.
      expect((await n2.call('GET', `/v1/sandboxes/${id}`)).body.state).toBe('error');
    }
  }, 120_000);

  it('survives a node’s death: its sandboxes lost within the lease, creates go elsewhere, the other node answers', async () => {
    const survivorOwn = await createApp(n1, { placement: { node: n1.id } });
    await waitState(n1, survivorOwn.id, 'running');
    const victim = await createApp(n1, { placement: { node: n2.id } });
    await waitState(n1, victim.id, 'running');
    const diedAt = Date.now();
    await n2.kill();
    await bed.hosts[1]!.kill();
    await bed.cutLink(bed.hosts[1]!);
    // Creates go elsewhere at once (the dead node does not answer; the next one takes it).
    const elsewhere = await createApp(n1);
    const createdElsewhereMs = Date.now() - diedAt;
    expect(elsewhere.node).toBe(n1.id);
    const lostAt = await waitFor(
      async () => {
        const res = await n1.call('GET', `/v1/sandboxes/${victim.id}`);
        return res.body?.state === 'error' ? Date.now() : undefined;
      },
      LEASE_TTL_SEC * 1000 + 15_000,
      'the dead node’s sandbox marked lost',
    );
    console.log(
      `[cluster] node death: sandboxes lost after ${lostAt - diedAt} ms (lease ${LEASE_TTL_SEC} s); a create went elsewhere after ${createdElsewhereMs} ms`,
    );
    expect((await events(n1, victim.id)).filter((e) => e.type === 'sandbox.lost')).toHaveLength(1);
    const nodes = (await n1.call('GET', '/v1/nodes')).body.nodes;
    expect(nodes.find((n: any) => n.id === n2.id).status).toBe('down');
    // The survivor keeps answering for its own sandboxes, API and preview.
    expect((await n1.call('GET', `/v1/sandboxes/${survivorOwn.id}`)).status).toBe(200);
    expect((await n1.preview(survivorOwn.id, 3000, '/echo')).status).toBe(200);
    // A preview of the dead node's sandbox is a clear 503, not a hang or a 500.
    const dead = await n1.preview(victim.id, 3000, '/echo');
    expect([502, 503]).toContain(dead.status);
  }, 120_000);
});
