// previewd's live-reloading static file server (Node, no dependencies).
// Mounted read-only at /opt/previewd/static-server.mjs; run as
//   node /opt/previewd/static-server.mjs [--port 8080] [--dir .]
// Serves the folder; every HTML page gets a small script that listens on /__previewd_live
// (Server-Sent Events) and reloads the page when a file under the folder changes.
import { createReadStream, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const port = Number(arg('port', process.env.PORT || '8080'));
const root = resolve(arg('dir', '.'));
const LIVE_PATH = '/__previewd_live';

const types = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

const client = `<script>(()=>{let es;const open=()=>{es=new EventSource('${LIVE_PATH}');es.onmessage=(e)=>{if(e.data==='reload')location.reload()};es.onerror=()=>{es.close();setTimeout(open,1000)}};open()})();</script>`;

function inject(html) {
  const at = html.lastIndexOf('</body>');
  return at >= 0 ? html.slice(0, at) + client + html.slice(at) : html + client;
}

const clients = new Set();
let timer;
function changed() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    for (const res of clients) res.write('data: reload\n\n');
  }, 30);
}
try {
  watch(root, { recursive: true }, (_event, name) => {
    if (name && /(^|[/\\])(node_modules|\.git)([/\\]|$)/.test(name)) return;
    changed();
  });
} catch (err) {
  console.error(`live reload off: ${err.message}`);
}

async function resolveFile(urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return undefined;
  }
  const full = normalize(join(root, path));
  if (full !== root && !full.startsWith(root + sep)) return undefined;
  const info = await stat(full).catch(() => undefined);
  if (info?.isDirectory()) {
    const index = join(full, 'index.html');
    const indexInfo = await stat(index).catch(() => undefined);
    return indexInfo?.isFile() ? { file: index, size: indexInfo.size } : undefined;
  }
  return info?.isFile() ? { file: full, size: info.size } : undefined;
}

const server = createServer(async (req, res) => {
  const url = req.url || '/';
  if (url.startsWith(LIVE_PATH)) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.write(': live\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const found = await resolveFile(url);
  if (!found) {
    const body = inject(
      `<!doctype html><title>Not found</title><h1>404</h1><p>${url.replace(/[<&>"]/g, '')} is not in this site.</p>`,
    );
    res.writeHead(404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const type = types[extname(found.file).toLowerCase()] || 'application/octet-stream';
  if (type.startsWith('text/html')) {
    const body = inject(await readFile(found.file, 'utf8'));
    res.writeHead(200, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  res.writeHead(200, { 'content-type': type, 'content-length': found.size, 'cache-control': 'no-cache' });
  if (req.method === 'HEAD') res.end();
  else
    createReadStream(found.file)
      .on('error', () => res.destroy())
      .pipe(res);
});

server.listen(port, '0.0.0.0', () => console.log(`static site on http://0.0.0.0:${port} (live reload)`));
