import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakeInternet } from './fake-internet.js';
import { makeWildcardCert } from './tls.js';

/**
 * Web servers and a DNS stub inside a fake internet's namespace (test/helpers/fake-internet.ts), for
 * the egress policy: HTTP on 80 and TLS on 443 on every address of the namespace (each answers
 * `web <the address it was reached on>`), a second documentation-range address (203.0.113.0/24,
 * TEST-NET-3) with a host route, and a DNS stub on the internet address's port 53 that answers A
 * records from a table (anything else: NXDOMAIN). Nothing here is reachable beyond this host.
 */
export interface FakeWeb {
  /** A second "internet" address in the namespace. */
  otherAddr: string;
  /** host:port of the DNS stub. */
  resolver: string;
  /** Bytes of the large file served at /big (for the bench). */
  bigBytes: number;
  close(): Promise<void>;
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
const up = () => { if (++ready === 3) console.log('ready'); };
http.createServer(answer).listen(80, '0.0.0.0', up);
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

/** `names`: host name → IPv4 address the stub answers. */
export async function startFakeWeb(
  internet: FakeInternet,
  names: (other: string) => Record<string, string>,
  bigMb = 1,
): Promise<FakeWeb> {
  const n = Number(internet.publicAddr.split('.')[3]);
  const otherAddr = `203.0.113.${n}`;
  const nsVeth = `pvct${internet.tag}n`;
  const hostVeth = `pvct${internet.tag}h`;
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
  if (
    ip('-4', 'route', 'show', 'match', otherAddr)
      .split('\n')
      .some((l) => l.trim() && !l.startsWith('default '))
  )
    throw new Error(`test address ${otherAddr} collides with this host's routes`);
  ip('-n', internet.ns, 'addr', 'add', `${otherAddr}/32`, 'dev', nsVeth);
  ip('route', 'add', `${otherAddr}/32`, 'via', internet.publicAddr, 'dev', hostVeth);
  const dir = mkdtempSync(join(tmpdir(), 'previewd-web-'));
  const { certFile, keyFile } = makeWildcardCert(dir);
  writeFileSync(join(dir, 'web.js'), SERVER);
  const server: ChildProcess = spawn(
    'nsenter',
    [
      `--net=/run/netns/${internet.ns}`,
      process.execPath,
      join(dir, 'web.js'),
      certFile,
      keyFile,
      internet.publicAddr,
      JSON.stringify(names(otherAddr)),
      String(bigMb),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const close = async () => {
    if (server.exitCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
    }
    try {
      ip('route', 'del', `${otherAddr}/32`, 'via', internet.publicAddr, 'dev', hostVeth);
    } catch {
      // gone with the veth
    }
    rmSync(dir, { recursive: true, force: true });
  };
  await new Promise<void>((resolve, reject) => {
    let err = '';
    server.stderr!.on('data', (d) => {
      err += d;
    });
    server.stdout!.on('data', (d) => {
      if (String(d).includes('ready')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`the namespace's web server exited (${code}): ${err}`)));
  }).catch(async (err) => {
    await close();
    throw err;
  });
  return { otherAddr, resolver: `${internet.publicAddr}:53`, bigBytes: bigMb * 1024 * 1024, close };
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
