import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../helpers/archives.js';
import { startTestServer, TEST_KEY, type TestServer, waitState } from '../helpers/server.js';

/**
 * The files API against a sandbox that swaps a directory and a link as fast as it can: inside the
 * sandbox, renameat2(RENAME_EXCHANGE) trades `race/a` (a real directory) with a link to a canary
 * tree on the host, and `race/b` with a link to `/`, while the API runs every file operation on
 * paths below them. previewd acts as root on the host: had it checked a path and then acted on the
 * path name again, the swapped link would have taken the operation into the canary (or `/`).
 *
 * Afterwards the canary is exactly as it was (entries, contents, modes, owners), nothing with the
 * test's prefix appeared in `/`, no answer carried the canary's marker, and everything the API
 * made in the workspace belongs to the sandbox's own uid.
 */

const RACE_SECONDS = 8;
/**
 * Where the swapping happens: under node_modules, which the files watcher does not watch, so the
 * hundreds of thousands of renames measure the files API, not inotify's event rate.
 */
const RACE = 'node_modules/race';
/** Requests per operation, at most (each loop also stops when the swapping stops). */
const MAX_PER_OP = 400;
/** The status recorded for an answer whose body was cut off mid-stream. */
const CUT_OFF = 299;

const SWAPPER = `
import ctypes, os, sys, time
libc = ctypes.CDLL('libc.so.6', use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
os.chdir('/workspace/node_modules/race')
pairs = [(b'a', b'a.swap'), (b'b', b'b.swap')]
end = time.time() + float(sys.argv[1])
n = 0
while time.time() < end:
    for x, y in pairs:
        if libc.renameat2(AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE) != 0:
            raise OSError(ctypes.get_errno(), 'renameat2')
        n += 1
with open('/workspace/.race-count', 'w') as f:
    f.write(str(n))
`;

interface Node {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  sha?: string;
  target?: string;
}

/** Every entry below `dir` with its type, mode, owner and content hash (or link target). */
function snapshot(dir: string): Record<string, Node> {
  const out: Record<string, Node> = {};
  const walk = (rel: string) => {
    const abs = rel ? join(dir, rel) : dir;
    const st = lstatSync(abs);
    const node: Node = { type: 'other', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      node.type = 'dir';
      for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
    } else if (st.isSymbolicLink()) {
      node.type = 'link';
      node.target = readlinkSync(abs);
    } else if (st.isFile()) {
      node.type = 'file';
      node.sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
    }
    out[rel || '.'] = node;
  };
  walk('');
  return out;
}

describe('file operations while the sandbox swaps a directory for a link (real engine)', () => {
  let server: TestServer;
  let id: string;
  let canary: string;
  const marker = `CANARY-${randomBytes(8).toString('hex')}`;
  const prefix = `previewd-race-${randomBytes(4).toString('hex')}`;
  /** The names in / an operation through the link to / would touch: the tree's own, and the prefix's. */
  const inRoot = () =>
    readdirSync('/').filter((n) => n.startsWith(prefix) || ['f.txt', 'f2.txt', 'sub'].includes(n));
  let rootBefore: string[] = [];

  const sh = async (script: string) => {
    const res = await server.call('POST', `/v1/sandboxes/${id}/exec`, { cmd: script });
    expect(res.body).toMatchObject({ exitCode: 0 });
    return res.body as { stdout: string };
  };

  beforeAll(async () => {
    // The canary: names the workspace's tree has too (f.txt, sub/…), so an operation that escaped
    // would land on them; modes and owners of several kinds.
    rootBefore = inRoot();
    canary = mkdtempSync(join(tmpdir(), 'previewd-canary-'));
    chmodSync(canary, 0o755);
    writeFileSync(join(canary, 'f.txt'), `${marker} f`);
    writeFileSync(join(canary, 'f2.txt'), `${marker} f2`);
    chmodSync(join(canary, 'f2.txt'), 0o600);
    mkdirSync(join(canary, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(canary, 'sub', 'x.txt'), `${marker} x`);
    writeFileSync(join(canary, 'sub', 'deeper', 'y.txt'), `${marker} y`);
    chownSync(join(canary, 'sub', 'deeper', 'y.txt'), 4242, 4242);
    chmodSync(join(canary, 'sub', 'deeper'), 0o700);

    server = await startTestServer();
    const created = await server.call('POST', '/v1/sandboxes', {
      image: server.app.config.images.python,
      // Half a core for the swapper: the other half and the second core answer the API.
      resources: { cpus: 0.5 },
      files: { '.race/swap.py': SWAPPER },
      runtime: { start: 'exec sleep infinity' },
    });
    expect(created.status).toBe(201);
    id = created.body.id;
    await waitState(server, id, 'running');
    await sh(
      [
        `mkdir -p ${RACE}/a/sub ${RACE}/b/sub`,
        `for d in ${RACE}/a ${RACE}/b; do echo inside > $d/f.txt; echo inside2 > $d/f2.txt; echo x > $d/sub/x.txt; done`,
        `ln -s ${canary} ${RACE}/a.swap`,
        `ln -s / ${RACE}/b.swap`,
      ].join(' && '),
    );
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    // Should the test fail, leave no trace of it in / either.
    for (const name of inRoot()) {
      if (!rootBefore.includes(name)) rmSync(join('/', name), { recursive: true, force: true });
    }
    if (canary) rmSync(canary, { recursive: true, force: true });
  });

  it('every operation stays in the workspace: the canary and / are untouched, nothing outside is read', async () => {
    const before = snapshot(canary);
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${server.url}/v1/sandboxes/${id}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TEST_KEY}`, ...(init.headers ?? {}) },
      }).then(async (res) => {
        // A download whose file changes while it is streamed is cut off (its size no longer
        // matches the tar header): what arrived until then is kept and checked like the rest.
        const parts: Buffer[] = [];
        let status = res.status;
        try {
          for await (const chunk of res.body ?? []) parts.push(Buffer.from(chunk));
        } catch {
          status = CUT_OFF;
        }
        return { status, body: Buffer.concat(parts) };
      });
    const json = (method: string, path: string, body: unknown) =>
      api(path, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const tar = await tarOf({
      'f.txt': 'from the tar',
      'sub/x.txt': 'from the tar',
      [`${prefix}-t.txt`]: 't',
    });

    // Every operation, on paths below the swapped directories (and on the directories themselves).
    const ops: Record<string, (dir: string, i: number) => Promise<{ status: number; body: Buffer }>> = {
      read: (d) => api(`/files?path=${d}/f.txt`),
      readDeep: (d) => api(`/files?path=${d}/sub/x.txt`),
      write: (d, i) =>
        api(`/files?path=${d}/${prefix}-w${i % 5}.txt`, { method: 'PUT', body: `written ${i}` }),
      writeDeep: (d, i) =>
        api(`/files?path=${d}/${prefix}-deep/${i % 3}/w.txt`, { method: 'PUT', body: `deep ${i}` }),
      overwrite: (d, i) => api(`/files?path=${d}/f.txt`, { method: 'PUT', body: `over ${i}` }),
      list: (d) => api(`/files/list?path=${d}`),
      listRecursive: (d) => api(`/files/list?path=${d}&recursive=true`),
      stat: (d) => api(`/files/stat?path=${d}/f2.txt`),
      move: (d, i) =>
        json(
          'POST',
          '/files/move',
          i % 2
            ? { from: `${d}/f2.txt`, to: `${d}/${prefix}-m.txt` }
            : { from: `${d}/${prefix}-m.txt`, to: `${d}/f2.txt` },
        ),
      moveInto: (d, i) =>
        json('POST', '/files/move', {
          from: `${d}/${prefix}-w${i % 5}.txt`,
          to: `${d}/${prefix}-mv/${i}.txt`,
        }),
      chmod: (d, i) => json('POST', '/files/chmod', { path: `${d}/f.txt`, mode: i % 2 ? '0777' : '0640' }),
      chmodDir: (d) => json('POST', '/files/chmod', { path: `${d}/sub`, mode: '0777' }),
      mkdir: (d, i) => json('POST', '/files/mkdir', { path: `${d}/${prefix}-dir/${i % 4}` }),
      deleteFile: (d, i) => api(`/files?path=${d}/${prefix}-w${(i + 2) % 5}.txt`, { method: 'DELETE' }),
      deleteTree: (d) => api(`/files?path=${d}/sub&recursive=true`, { method: 'DELETE' }),
      deleteDirs: (d) => api(`/files?path=${d}/${prefix}-dir&recursive=true`, { method: 'DELETE' }),
      glob: (d) => api(`/files/glob?pattern=${d}/**`),
      tarIn: (d) =>
        api(`/files/batch?path=${d}`, {
          method: 'POST',
          body: tar,
          headers: { 'content-type': 'application/x-tar' },
        }),
      batch: (d, i) =>
        json('POST', `/files/batch?path=${d}`, {
          files: { [`${prefix}-b.txt`]: `b ${i}`, 'sub/x.txt': 'b' },
        }),
      archive: (d) => api(`/files/archive?path=${d}`),
      archiveFile: (d) => api(`/files/archive?path=${d}/f.txt`),
    };

    // The swapper runs in the sandbox for RACE_SECONDS; the API hammers until it has stopped.
    const swapping = server.call('POST', `/v1/sandboxes/${id}/exec`, {
      cmd: ['python3', '/workspace/.race/swap.py', String(RACE_SECONDS)],
      timeoutSec: RACE_SECONDS + 60,
    });
    const deadline = Date.now() + RACE_SECONDS * 1000;
    let running = true;
    void swapping.finally(() => {
      running = false;
    });
    const statuses: Record<string, Record<number, number>> = {};
    let leaked: string | undefined;
    const failures: string[] = [];
    let answers = 0;
    await Promise.all(
      Object.entries(ops).flatMap(([name, op]) =>
        [`${RACE}/a`, `${RACE}/b`].map(async (dir) => {
          const seen: Record<number, number> = {};
          statuses[`${name} ${dir}`] = seen;
          for (let i = 0; i < MAX_PER_OP && running && Date.now() < deadline; i++) {
            const res = await op(dir, i);
            answers++;
            seen[res.status] = (seen[res.status] ?? 0) + 1;
            if (res.status >= 500) failures.push(`${name} ${dir}: ${res.body.toString('utf8', 0, 300)}`);
            if (res.body.includes(marker)) leaked ??= `${name} ${dir}: ${res.body.toString('utf8', 0, 300)}`;
          }
        }),
      ),
    );
    const swapped = await swapping;
    expect(swapped.body, JSON.stringify(swapped.body).slice(0, 500)).toMatchObject({ exitCode: 0 });
    const exchanges = Number((await sh('cat /workspace/.race-count')).stdout);
    console.log(`[race] ${exchanges} exchanges, ${answers} answers`, JSON.stringify(statuses));

    // The race was on: the sandbox swapped many times, and the API saw both the directory and the link.
    expect(exchanges).toBeGreaterThan(1000);
    const all = Object.values(statuses);
    expect(all.some((s) => (s[200] ?? 0) + (s[204] ?? 0) > 0)).toBe(true);
    expect(all.some((s) => (s[400] ?? 0) > 0)).toBe(true);
    // Nothing outside was read, changed, made, removed or given to anyone.
    expect(leaked).toBeUndefined();
    expect(snapshot(canary)).toEqual(before);
    expect(inRoot()).toEqual(rootBefore);

    // What the API made inside belongs to the sandbox's own uid (no root-owned file left behind).
    const { uid } = (await server.app.store.getSandbox(id))!.identity!;
    const others = await sh(`find /workspace/${RACE} -not -type l -not -uid ${uid} -printf "%U %p\\n"`);
    expect(others.stdout).toBe('');

    // Nothing answered 5xx.
    expect(failures.slice(0, 5)).toEqual([]);
  }, 180_000);
});
