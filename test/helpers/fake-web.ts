import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWildcardCert } from './tls.js';

/**
 * A stand-in internet for the egress policy, made on this host and nowhere else (like
 * fake-internet.ts, and in ranges that one does not use, so both can run at once): a network
 * namespace joined by a veth pair, holding a documentation-range "internet" address
 * (203.0.113.0/24, TEST-NET-3), a second one in the same range and a private address
 * (10.214.x.2), each with a host route. Web servers answer on 80, 443 and 8080 of every address
 * (`web <the address it was reached on>`; `/big` is a large body), and a DNS stub on the internet
 * address's port 53 answers A records from a table (anything else: NXDOMAIN).
 */
export interface FakeWeb {
  tag: string;
  ns: string;
  /** The "internet" address. */
  publicAddr: string;
  /** A second "internet" address. */
  otherAddr: string;
  /** A private address inside the namespace (what a rebinding name resolves to). */
  privateAddr: string;
  /** A port besides 80 and 443 that the servers answer on. */
  otherPort: number;
  /** host:port of the DNS stub. */
  resolver: string;
  close(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

function routed(addr: string): boolean {
  const routes = ip('-4', 'route', 'show', 'match', addr)
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('default '));
  return routes.length > 0 || ip('-4', '-o', 'addr', 'show').includes(` ${addr}/`);
}

/** Namespaces a killed run left behind (older than 15 minutes). */
function sweepStale(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = /^(pvdeg-[0-9a-f]{6})\b/.exec(line)?.[1];
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

const SERVER = `
const http = require('node:http'), https = require('node:https'), fs = require('node:fs'), dgram = require('node:dgram');
const [cert, key, dnsAddr, namesJson, bigMb] = process.argv.slice(2);
const names = JSON.parse(namesJson);
const big = Buffer.alloc(Number(bigMb) * 1024 * 1024, 120);
const answer = (req, res) => {
  if (req.url === '/big') { res.setHeader('content-length', big.length); return res.end(big); }
  res.end('web ' + req.socket.localAddress);
};
let ready = 0;
const up = () => { if (++ready === 4) console.log('ready'); };
http.createServer(answer).listen(80, '0.0.0.0', up);
http.createServer(answer).listen(8080, '0.0.0.0', up);
https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, answer).listen(443, '0.0.0.0', up);
const dns = dgram.createSocket('udp4');
dns.on('message', (msg, rinfo) => {
  if (msg.length < 17) return;
  let i = 12; const labels = [];
  while (i < msg.length && msg[i]) { labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString('latin1')); i += msg[i] + 1; }
  const qtype = msg.readUInt16BE(i + 1);
  const addr = names[labels.join('.').toLowerCase()];
  const header = Buffer.from(msg.subarray(0, 12));
  header.writeUInt16BE(0x8180 | (addr ? 0 : 3), 2);
  header.writeUInt16BE(1, 4); header.writeUInt16BE(addr && qtype === 1 ? 1 : 0, 6);
  header.writeUInt16BE(0, 8); header.writeUInt16BE(0, 10);
  let ans = Buffer.alloc(0);
  if (addr && qtype === 1) {
    ans = Buffer.alloc(16);
    ans.writeUInt16BE(0xc00c, 0); ans.writeUInt16BE(1, 2); ans.writeUInt16BE(1, 4); ans.writeUInt32BE(5, 6); ans.writeUInt16BE(4, 10);
    addr.split('.').forEach((p, k) => { ans[12 + k] = Number(p); });
  }
  dns.send(Buffer.concat([header, msg.subarray(12, i + 5), ans]), rinfo.port, rinfo.address);
});
dns.bind(53, dnsAddr, up);
`;

/** `names(web)`: host name → IPv4 address the stub answers. */
export async function startFakeWeb(
  names: (web: Pick<FakeWeb, 'publicAddr' | 'otherAddr' | 'privateAddr'>) => Record<string, string>,
  bigMb = 1,
): Promise<FakeWeb> {
  sweepStale();
  const tag = randomBytes(3).toString('hex');
  const ns = `pvdeg-${tag}`;
  const hostVeth = `pveg${tag}h`;
  const nsVeth = `pveg${tag}n`;
  // addresses no other run on this host holds (two runs at once pick again)
  let n = randomInt(4, 31);
  const addrs = (k: number) => ({
    hostAddr: `203.0.113.${4 * k + 1}`,
    publicAddr: `203.0.113.${4 * k + 2}`,
    otherAddr: `203.0.113.${128 + k}`,
    privateAddr: `10.214.${k}.2`,
  });
  for (let tries = 0; Object.values(addrs(n)).some(routed); tries++) {
    if (tries > 50) throw new Error('no free test addresses for the fake web');
    n = randomInt(4, 31);
  }
  const { hostAddr, publicAddr, otherAddr, privateAddr } = addrs(n);
  const dir = mkdtempSync(join(tmpdir(), 'previewd-web-'));
  const cleanups: (() => void)[] = [];
  let server: ChildProcess | undefined;
  const close = async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server!.once('exit', r));
    }
    for (const fn of cleanups.reverse()) {
      try {
        fn();
      } catch {
        // already gone
      }
    }
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
    for (const addr of [otherAddr, privateAddr]) ip('-n', ns, 'addr', 'add', `${addr}/32`, 'dev', nsVeth);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', nsVeth, 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', hostAddr);
    for (const addr of [otherAddr, privateAddr]) {
      ip('route', 'add', `${addr}/32`, 'via', publicAddr, 'dev', hostVeth);
      cleanups.push(() => ip('route', 'del', `${addr}/32`, 'via', publicAddr, 'dev', hostVeth));
    }
    const { certFile, keyFile } = makeWildcardCert(dir);
    writeFileSync(join(dir, 'web.js'), SERVER);
    const table = JSON.stringify(names({ publicAddr, otherAddr, privateAddr }));
    server = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        process.execPath,
        join(dir, 'web.js'),
        certFile,
        keyFile,
        publicAddr,
        table,
        String(bigMb),
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
      server!.once('exit', (code) =>
        reject(new Error(`the namespace's web server exited (${code}): ${err}`)),
      );
    });
  } catch (err) {
    await close();
    throw err;
  }
  return {
    tag,
    ns,
    publicAddr,
    otherAddr,
    privateAddr,
    otherPort: 8080,
    resolver: `${publicAddr}:53`,
    close,
  };
}

/**
 * A Node script for `node -e` in a sandbox: for each target of the JSON in argv[1] ({ addr, port,
 * name, tls }), connects to addr:port and sends a GET naming `name` (SNI and Host for TLS, Host
 * for HTTP); prints a JSON array of "ok:<body's last line>", an error code, "closed" (the
 * connection ended without an answer) or "timeout".
 */
export const NAMED_PROBE = `
const net = require('net'), tls = require('tls');
const one = (t) => new Promise((done) => {
  let data = '', settled = false, sock;
  const last = () => data.split('\\n').filter(Boolean).pop();
  const finish = (r) => { if (!settled) { settled = true; clearTimeout(timer); sock.destroy(); done(r); } };
  const timer = setTimeout(() => finish(data ? 'ok:' + last() : 'timeout'), 5000);
  sock = t.tls ? tls.connect({ host: t.addr, port: t.port, rejectUnauthorized: false, servername: t.name })
               : net.connect({ host: t.addr, port: t.port });
  sock.on(t.tls ? 'secureConnect' : 'connect', () => sock.write('GET / HTTP/1.0\\r\\nHost: ' + t.name + '\\r\\n\\r\\n'));
  sock.on('data', (d) => { data += d; });
  sock.on('end', () => finish(data ? 'ok:' + last() : 'closed'));
  sock.on('error', (e) => finish(data ? 'ok:' + last() : e.code || e.message));
});
Promise.all(JSON.parse(process.argv[1]).map(one)).then((r) => console.log(JSON.stringify(r)));
`;
