import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWildcardCert } from './tls.js';

/**
 * A stand-in for the internet and for private networks, made on this host and nowhere else: a
 * network namespace joined by a veth pair, holding a documentation-range address (the "internet")
 * and test addresses in private and link-local ranges (10.x, 192.168.x, 172.16/12, CGNAT and
 * 169.254.169.254) on its own interface, with host routes to each, so sandbox traffic to them is
 * forwarded there like traffic to any outside host. One HTTP and one TLS server in the namespace
 * answer on every address with the address they were reached on.
 */
export interface FakeInternet {
  tag: string;
  ns: string;
  /** The "internet" address (198.51.100.0/24, TEST-NET-2). */
  publicAddr: string;
  /** The host's end of the veth (sandbox traffic is masqueraded to it). */
  hostAddr: string;
  /** Addresses in ranges a sandbox must not reach, all inside the namespace. */
  privateAddrs: { rfc1918a: string; rfc1918b: string; rfc1918c: string; cgnat: string; metadata: string };
  httpPort: number;
  tlsPort: number;
  close(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

/** Fails when `addr` is routed anywhere but the default route, or is one of the host's addresses. */
function assertUnused(addr: string): void {
  const routes = ip('-4', 'route', 'show', 'match', addr)
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('default '));
  const local = ip('-4', '-o', 'addr', 'show').includes(` ${addr}/`);
  if (routes.length > 0 || local) {
    throw new Error(`test address ${addr} collides with this host's network (${routes.join('; ')})`);
  }
}

const SERVER = `
const http = require('node:http'), https = require('node:https'), fs = require('node:fs');
const [tag, httpPort, tlsPort, cert, key] = process.argv.slice(2);
const answer = (req, res) => res.end('internet ' + tag + ' ' + req.socket.localAddress);
let ready = 0;
const up = () => { if (++ready === 2) console.log('ready'); };
http.createServer(answer).listen(Number(httpPort), '0.0.0.0', up);
https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, answer).listen(Number(tlsPort), '0.0.0.0', up);
`;

/**
 * Removes namespaces a killed test run left behind (older than 15 minutes, so a run in progress
 * keeps its own): deleting one removes its veth and the host routes through it.
 */
function sweepStale(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = /^(pvdct-[0-9a-f]{6})\b/.exec(line)?.[1];
    if (!name) continue;
    try {
      if (Date.now() - statSync(`/run/netns/${name}`).mtimeMs < 15 * 60_000) continue;
      for (const pid of ip('netns', 'pids', name).split('\n').filter(Boolean))
        process.kill(Number(pid), 'SIGKILL');
      ip('netns', 'del', name);
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * `metadata`: the link-local address the namespace holds (default 169.254.169.254). Two test
 * files running at once need different ones (a host route can point one way only); 169.254.170.2
 * is the other well-known metadata address.
 */
export async function startFakeInternet(opts: { metadata?: string } = {}): Promise<FakeInternet> {
  sweepStale();
  const tag = randomBytes(3).toString('hex');
  const n = randomInt(4, 60);
  const ns = `pvdct-${tag}`;
  const hostVeth = `pvct${tag}h`;
  const nsVeth = `pvct${tag}n`;
  const hostAddr = `198.51.100.${4 * n + 1}`;
  const publicAddr = `198.51.100.${4 * n + 2}`;
  // Checked against `ip route` below, and clear of the resolver (10.255.255.x) and of the pools
  // Docker draws new networks from while the test runs (172.17-31/16, then 192.168.0.0/16 in /20s
  // from the bottom): a network made meanwhile on one of them would take the address on-link.
  const privateAddrs = {
    rfc1918a: `10.213.${n}.2`,
    rfc1918b: `192.168.250.${n}`,
    rfc1918c: `172.16.213.${n}`,
    cgnat: `100.87.${n}.2`,
    metadata: opts.metadata ?? '169.254.169.254',
  };
  const httpPort = 8000 + n;
  const tlsPort = 8443;
  for (const addr of [hostAddr, publicAddr, ...Object.values(privateAddrs)]) assertUnused(addr);

  const dir = mkdtempSync(join(tmpdir(), 'previewd-internet-'));
  const cleanups: (() => void)[] = [];
  const quiet = (fn: () => void) => {
    try {
      fn();
    } catch {
      // already gone
    }
  };
  let server: ChildProcess | undefined;
  const close = async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server!.once('exit', r));
    }
    for (const fn of cleanups.reverse()) quiet(fn);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip('netns', 'add', ns);
    cleanups.push(() => ip('netns', 'del', ns));
    ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth);
    cleanups.push(() => ip('link', 'del', hostVeth));
    ip('link', 'set', nsVeth, 'netns', ns);
    ip('addr', 'add', `${hostAddr}/30`, 'dev', hostVeth);
    ip('link', 'set', hostVeth, 'up');
    ip('-n', ns, 'addr', 'add', `${publicAddr}/30`, 'dev', nsVeth);
    for (const addr of Object.values(privateAddrs)) ip('-n', ns, 'addr', 'add', `${addr}/32`, 'dev', nsVeth);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', nsVeth, 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', hostAddr);
    for (const addr of Object.values(privateAddrs)) {
      ip('route', 'add', `${addr}/32`, 'via', publicAddr, 'dev', hostVeth);
      cleanups.push(() => ip('route', 'del', `${addr}/32`, 'via', publicAddr, 'dev', hostVeth));
    }

    const { certFile, keyFile } = makeWildcardCert(dir);
    writeFileSync(join(dir, 'server.js'), SERVER);
    server = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        process.execPath,
        join(dir, 'server.js'),
        tag,
        String(httpPort),
        String(tlsPort),
        certFile,
        keyFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await new Promise<void>((resolve, reject) => {
      let err = '';
      server!.stderr!.on('data', (d) => {
        err += d;
      });
      server!.stdout!.on('data', (d) => {
        if (String(d).includes('ready')) resolve();
      });
      server!.once('exit', (code) => reject(new Error(`the namespace's server exited (${code}): ${err}`)));
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { tag, ns, publicAddr, hostAddr, privateAddrs, httpPort, tlsPort, close };
}

export interface ProbeTarget {
  host: string;
  port: number;
  tls?: boolean;
}

/**
 * A Node script for `node -e` inside a container: connects to each target of the JSON in argv[1]
 * (TLS when asked), sends a GET, and prints a JSON array: "ok:<last line of the answer>", or the
 * error code (EHOSTUNREACH when a REJECT rule refused it), or "timeout".
 */
export const PROBE_SCRIPT = `
const net = require('net'), tls = require('tls');
const one = (t) => new Promise((done) => {
  let data = '', settled = false, sock;
  const finish = (r) => { if (!settled) { settled = true; clearTimeout(timer); sock.destroy(); done(r); } };
  const timer = setTimeout(() => finish(data ? 'ok:' + data.split('\\n').pop() : 'timeout'), 4000);
  sock = t.tls ? tls.connect({ host: t.host, port: t.port, rejectUnauthorized: false, servername: 'internet.test' })
               : net.connect({ host: t.host, port: t.port });
  sock.on(t.tls ? 'secureConnect' : 'connect', () => sock.write('GET / HTTP/1.0\\r\\nHost: internet.test\\r\\n\\r\\n'));
  sock.on('data', (d) => { data += d; });
  sock.on('end', () => finish('ok:' + data.split('\\n').pop()));
  sock.on('error', (e) => finish(data ? 'ok:' + data.split('\\n').pop() : e.code || e.message));
});
Promise.all(JSON.parse(process.argv[1]).map(one)).then((r) => console.log(JSON.stringify(r)));
`;
