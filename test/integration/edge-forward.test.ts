import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSandboxId } from '../../src/domain/ids.js';
import { LOCAL_NODE } from '../../src/domain/node.js';
import type { EdgeCluster } from '../../src/edge/edge-cluster.js';
import {
  type SandboxDirectory,
  type SandboxEntry,
  toSandboxEntry,
} from '../../src/edge/sandbox-directory.js';
import {
  createAppSandbox,
  edgeJson,
  previewHostOf,
  rawJson,
  wsConnect,
  wsRoundTrip,
} from '../helpers/edge.js';
import { startTestServer, TEST_KEY, type TestServer, waitFor, waitState } from '../helpers/server.js';

const adminAuth = { authorization: `Bearer ${TEST_KEY}` };

/** Listens on a loopback port; resolves with its base URL. */
function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

async function wakesOk(server: TestServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: adminAuth })).text();
  const match = /previewd_edge_wakes_total\{result="ok"\} (\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Two previewd nodes on loopback, each with its own store, engine labels and HAProxy front: node
 * `a` runs the sandboxes; node `b`'s edge finds their rows (its directory reads a's rows, as a
 * shared store would give them) and forwards every request to a's edge, which does everything
 * itself. A third "node" c is a plain HTTP server that records what reaches it.
 */
describe('edge forwarding to the owning node (two previewd nodes, real engine)', () => {
  const credential = randomBytes(32).toString('hex');
  let a: TestServer;
  let b: TestServer;
  let id: string;
  let host: string;
  let privateId: string;
  let privateHost: string;
  /** A row in a's store naming node c (whose sandbox a does not run). */
  const ghostOfC = newSandboxId();
  /** Rows only b's directory holds: their nodes are down or unreachable. */
  const rowsOnlyB = new Map<string, SandboxEntry>();
  /** b's view of rows that moved since it looked (a stale directory). */
  const staleNode = new Map<string, string>();
  const nodeC = createServer((req, res) => {
    seenByC.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ node: 'c', url: req.url, headers: req.headers }));
  });
  const seenByC: IncomingHttpHeaders[] = [];
  let cUrl: string;
  let closedUrl: string;

  const clusterA: EdgeCluster = {
    self: LOCAL_NODE,
    credential,
    edgeUrl: async (node) => (node === 'c' ? cUrl : node === clusterA.self ? a.edgeUrl : undefined),
  };
  const clusterB: EdgeCluster = {
    self: 'b',
    credential,
    edgeUrl: async (node) =>
      node === clusterA.self
        ? a.edgeUrl
        : node === 'closed'
          ? closedUrl
          : node === 'b'
            ? b.edgeUrl
            : undefined,
  };
  const directoryB = (local: SandboxDirectory): SandboxDirectory => ({
    async lookup(sandboxId) {
      const own = (await local.lookup(sandboxId)) ?? rowsOnlyB.get(sandboxId);
      if (own) return own;
      const record = await a.app.store.getSandbox(sandboxId);
      if (!record) return undefined;
      const entry = toSandboxEntry(record);
      const moved = staleNode.get(sandboxId);
      return moved ? { ...entry, node: moved } : entry;
    },
    address: (sandboxId, port) => local.address(sandboxId, port),
    instance: (sandboxId) => local.instance(sandboxId),
    appStatus: (sandboxId) => local.appStatus(sandboxId),
    lastLogLines: (sandboxId, n) => local.lastLogLines(sandboxId, n),
  });

  beforeAll(async () => {
    cUrl = await listen(nodeC);
    const closed = createServer();
    closedUrl = await listen(closed);
    await new Promise((r) => closed.close(r));
    a = await startTestServer({}, { edgeCluster: clusterA });
    b = await startTestServer({}, { edgeCluster: clusterB, sandboxDirectory: directoryB });
    ({ id } = await createAppSandbox(a, { ports: [3000, 4000] }));
    host = previewHostOf(id);
    // a's self is the node its rows name (`local` until rows carry the cluster's node id).
    const record = (await a.app.store.getSandbox(id))!;
    clusterA.self = record.node ?? LOCAL_NODE;
    ({ id: privateId } = await createAppSandbox(a, { visibility: 'private' }));
    privateHost = previewHostOf(privateId);
    await a.app.store.insertSandbox({
      ...record,
      id: ghostOfC,
      node: 'c',
      state: 'stopped',
      containerId: undefined,
      identity: undefined,
    });
    for (const node of ['gone', 'closed']) {
      const ghost = newSandboxId();
      rowsOnlyB.set(ghost, { ...toSandboxEntry(record), id: ghost, node });
    }
    await waitFor(async () => ((await edgeJson(a, host, '/echo')).status === 200 ? true : undefined));
  }, 120_000);
  afterAll(async () => {
    await a?.app.store.purgeSandbox(ghostOfC).catch(() => undefined);
    await b?.close();
    await a?.close();
    await new Promise((r) => nodeC.close(r));
  });

  it("forwards HTTP to the owner's edge with the browser Host; the owner keeps the access log", async () => {
    const res = await edgeJson(b, host, '/echo?via=b', {
      headers: { 'x-previewd-client': '203.0.113.9', 'x-previewd-node-auth': 'guess' },
    });
    expect(res.status).toBe(200);
    expect(res.body.sandbox).toBe(id);
    expect(res.body.headers.host).toBe(host);
    expect(res.body.headers['x-forwarded-host']).toBe(host);
    expect(res.body.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(Object.keys(res.body.headers).filter((h) => h.startsWith('x-previewd-'))).toEqual([]);
    // The request is in a's access log (whole on its own node), not in b's.
    await waitFor(async () =>
      a.app.edge.accessLog.recent(id).some((e) => e.path === '/echo?via=b') ? true : undefined,
    );
    expect(b.app.edge.accessLog.recent(id)).toEqual([]);
    // Other ports and unexposed ones are the owner's answers too.
    expect((await edgeJson(b, previewHostOf(id, 4000), '/echo')).body.port).toBe(4000);
    const unexposed = await edgeJson(b, previewHostOf(id, 5000), '/echo');
    expect(unexposed.status).toBe(404);
    expect(unexposed.body.error.code).toBe('port_not_exposed');
  });

  it('streams request and response bodies both ways through both edges', async () => {
    const upload = randomBytes(8 * 1024 * 1024);
    const posted = await edgeJson(b, host, '/upload', { method: 'POST', body: upload });
    expect(posted.status).toBe(200);
    expect(posted.body).toEqual({
      bytes: upload.length,
      sha256: createHash('sha256').update(upload).digest('hex'),
    });
    const res = await request(`${b.edgeUrl}/chunked?gate=fwd`, { headers: { host } });
    expect(res.statusCode).toBe(200);
    const chunks = res.body[Symbol.asyncIterator]();
    // The first part arrives while the app still holds the rest: nothing buffers it.
    expect(Buffer.from((await chunks.next()).value).toString()).toBe('first-chunk\n');
    expect((await edgeJson(b, host, '/release?gate=fwd')).body).toEqual({ released: true });
    let rest = '';
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      rest += Buffer.from(next.value).toString();
    }
    expect(rest).toBe('last-chunk\n');
  });

  it('forwards a WebSocket upgrade (HMR) and echoes through both edges', async () => {
    const { ws, first } = await wsConnect(b, host, '/hmr?x=1');
    expect(JSON.parse(first)).toEqual({ host, forwardedHost: host, url: '/hmr?x=1' });
    expect(await wsRoundTrip(ws, 'ping')).toBe('ping');
    expect(await wsRoundTrip(ws, 'y'.repeat(5000))).toBe('y'.repeat(5000));
    ws.close();
    await waitFor(async () =>
      a.app.edge.accessLog.recent(id).some((e) => e.websocket && e.path === '/hmr?x=1') ? true : undefined,
    );
    expect(b.app.edge.accessLog.recent(id)).toEqual([]);
  });

  it('leaves the token check of a private preview to the owner: the same answers as the owner gives', async () => {
    const direct = await edgeJson(a, privateHost, '/echo');
    const forwarded = await edgeJson(b, privateHost, '/echo');
    expect(forwarded.status).toBe(401);
    expect(forwarded.body).toEqual(direct.body);
    expect(forwarded.body.error.code).toBe('preview_token_required');
    const html = await edgeJson(b, privateHost, '/', { headers: { accept: 'text/html' } });
    expect(html.status).toBe(401);
    expect(html.text).toBe((await edgeJson(a, privateHost, '/', { headers: { accept: 'text/html' } })).text);
    await expect(wsConnect(b, privateHost, '/ws')).rejects.toThrow(/401/);
    // A token of node a (b could not have checked it: its signing key is its own).
    const minted = await a.call('POST', `/v1/sandboxes/${privateId}/preview-tokens`, {});
    expect(minted.status).toBe(201);
    const ok = await edgeJson(b, privateHost, '/echo', {
      headers: { 'x-previewd-token': minted.body.token },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.sandbox).toBe(privateId);
    expect(ok.body.headers['x-previewd-token']).toBeUndefined();
    const { ws } = await wsConnect(b, privateHost, '/ws', { 'x-previewd-token': minted.body.token });
    expect(await wsRoundTrip(ws, 'private')).toBe('private');
    ws.close();
    // The link's token becomes the owner's cookie on that host, through b as through a.
    const first = await edgeJson(b, privateHost, `/echo?a=1&previewd_token=${minted.body.token}`, {
      headers: { accept: 'text/html' },
    });
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/echo?a=1');
    expect(String(first.headers['set-cookie'])).toContain(`previewd_token=${minted.body.token}`);
    const withCookie = await edgeJson(b, privateHost, '/echo?a=1', {
      headers: { cookie: `previewd_token=${minted.body.token}` },
    });
    expect(withCookie.status).toBe(200);
    expect(withCookie.body.headers.cookie).toBeUndefined();
  });

  it('wakes a sleeping sandbox on its own node: one start for requests entering both edges', async () => {
    await a.call('POST', `/v1/sandboxes/${id}/stop`);
    await waitState(a, id, 'stopped');
    const before = await wakesOk(a);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => edgeJson(i % 2 ? a : b, host, `/echo?n=${i}`)),
    );
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    expect(await wakesOk(a)).toBe(before + 1);
    expect(await wakesOk(b)).toBe(0);
  });

  it('never forwards a forwarded request again: a sandbox the owner does not hold either is 503', async () => {
    // b still thinks the sandbox is on a; a's row names c.
    staleNode.set(ghostOfC, clusterA.self);
    const res = await edgeJson(b, previewHostOf(ghostOfC), '/echo');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('node_unavailable');
    expect(res.headers['retry-after']).toBe('5');
    await expect(wsConnect(b, previewHostOf(ghostOfC), '/ws')).rejects.toThrow(/503/);
    expect(seenByC).toEqual([]);
  });

  it('does not trust forwarding headers without the credential: the request is forwarded as a new one', async () => {
    const res = await rawJson(a, previewHostOf(ghostOfC), '/who?x=1', {
      'x-previewd-node-auth': 'not-the-credential',
      'x-previewd-forwarded-by': 'b',
      'x-previewd-client': '203.0.113.9',
      'x-previewd-proto': 'https',
      connection: 'keep-alive, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
    });
    expect(res.status).toBe(200);
    expect(res.body.node).toBe('c');
    expect(res.body.url).toBe('/who?x=1');
    const seen = res.body.headers as Record<string, string>;
    expect(seen.host).toBe(previewHostOf(ghostOfC));
    expect(seen['x-previewd-node-auth']).toBe(credential);
    expect(seen['x-previewd-forwarded-by']).toBe(clusterA.self);
    expect(seen['x-previewd-client']).toBe('127.0.0.1');
    expect(seen['x-previewd-proto']).toBe('http');
    expect(seen['x-hop']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seenByC).toHaveLength(1);
  });

  it('answers 503 node_unavailable with Retry-After when the owner is down or unreachable', async () => {
    for (const [ghost, entry] of rowsOnlyB) {
      const res = await edgeJson(b, previewHostOf(ghost), '/echo');
      expect(res.status, entry.node).toBe(503);
      expect(res.body.error.code).toBe('node_unavailable');
      expect(res.headers['retry-after']).toBe('5');
      const page = await edgeJson(b, previewHostOf(ghost), '/', { headers: { accept: 'text/html' } });
      expect(page.status).toBe(503);
      expect(page.headers['content-type']).toContain('text/html');
      await expect(wsConnect(b, previewHostOf(ghost), '/ws')).rejects.toThrow(/503/);
    }
  });
});
