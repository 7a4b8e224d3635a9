import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PreviewdError } from '../domain/errors.js';

/** The path, on every preview host, of the edge's own status endpoint (polled by the starting page). */
export const STATUS_PATH = '/__previewd/status';

/** Whether the client is a browser loading a page (as opposed to fetch/XHR, assets and programs). */
export function wantsHtml(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/** A navigation: a browser GET for a document. */
export function isNavigation(req: IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && wantsHtml(req);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f6f7f9;color:#1d2330}
main{max-width:46rem;padding:2rem}h1{font-size:1.3rem;margin:0 0 .5rem}code{font-size:.9em}
pre{background:#1d2330;color:#e6e9ef;padding:1rem;border-radius:6px;overflow:auto;max-height:18rem;font-size:12px}
.hint{color:#555}`;

function layout(title: string, body: string, script = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main>${script}</body></html>`;
}

function logBlock(logs: string[] | undefined, id = ''): string {
  const text = logs && logs.length > 0 ? logs.join('\n') : '';
  return `<pre${id ? ` id="${id}"` : ''}${text ? '' : ' hidden'}>${escapeHtml(text)}</pre>`;
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

/** An error as an HTML page for browsers, or as `{error:{code,message,hint}}` for everything else. */
export function sendError(req: IncomingMessage, res: ServerResponse, err: PreviewdError): void {
  const headers = { ...err.headers, 'x-previewd-error': err.code };
  if (!wantsHtml(req)) {
    send(res, err.status, 'application/json; charset=utf-8', JSON.stringify(err.toBody()), headers);
    return;
  }
  const details = (err.details ?? {}) as { logs?: string[]; exitCode?: number };
  const title =
    err.code === 'app_crashed'
      ? 'The app crashed'
      : err.code === 'sandbox_not_found'
        ? 'No such preview'
        : 'Preview unavailable';
  const body = `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(err.message)}</p><p class="hint">${escapeHtml(err.hint)}</p>${
    details.exitCode !== undefined ? `<p>Exit code: <code>${details.exitCode}</code></p>` : ''
  }${logBlock(details.logs)}<p class="hint"><code>${err.code}</code></p>`;
  send(res, err.status, 'text/html; charset=utf-8', layout(title, body), headers);
}

/**
 * The "starting" page: shows the last log lines and polls the edge's status endpoint; the moment
 * the port answers it reloads into the app. If the app crashes it shows that instead. No meta refresh.
 */
export function sendStartingPage(
  res: ServerResponse,
  info: { sandboxId: string; port: number; logs: string[] },
): void {
  const body = `<h1 id="title">Starting the preview…</h1><p id="msg">Sandbox <code>${escapeHtml(info.sandboxId)}</code> is waking up; port ${info.port} will load here as soon as it answers.</p>${logBlock(info.logs, 'logs')}`;
  const script = `<script>
(function(){
  var delay=300, statusUrl=${JSON.stringify(STATUS_PATH)};
  function show(lines){var el=document.getElementById('logs');if(lines&&lines.length){el.hidden=false;el.textContent=lines.join('\\n');}}
  function poll(){
    fetch(statusUrl,{cache:'no-store',credentials:'same-origin',headers:{accept:'application/json'}})
      .then(function(r){return r.json();})
      .then(function(s){
        if(s.ready){location.reload();return;}
        show(s.logs);
        if(s.crashed||s.state==='error'){
          document.getElementById('title').textContent=s.crashed?'The app crashed':'The sandbox is in error';
          document.getElementById('msg').textContent=s.message||'';
          return;
        }
        delay=Math.min(delay*1.3,2000);setTimeout(poll,delay);
      })
      .catch(function(){delay=Math.min(delay*2,5000);setTimeout(poll,delay);});
  }
  setTimeout(poll,delay);
})();
</script>`;
  send(res, 503, 'text/html; charset=utf-8', layout('Starting…', body, script), {
    'retry-after': '2',
    'x-previewd-status': 'starting',
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), headers);
}
