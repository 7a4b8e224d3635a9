import type { IncomingMessage, ServerResponse } from 'node:http';
import { failRequest } from './edge-answers.js';
import type { EdgeParts } from './edge-parts.js';
import { sendJson } from './pages.js';
import { probePort } from './port-probe.js';
import type { PreviewTarget } from './preview-host.js';
import type { Route } from './route-table.js';
import { appDown, PAGE_LOG_LINES } from './wake.js';

/** `/__previewd/status` on a preview host: what the starting page polls. */
export async function answerStatus(
  parts: EdgeParts,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  target: PreviewTarget,
): Promise<void> {
  const { routes, directory } = parts;
  try {
    const fresh = (await routes.get(route.id)) ?? route;
    let ready = false;
    let crashed: { exitCode?: number } | undefined;
    let message = '';
    if (fresh.state === 'running') {
      const addr = await routes.address(fresh, target.port).catch(() => undefined);
      ready = addr ? await probePort(addr.host, addr.port, 250, parts.probeOpts) : false;
      if (ready) fresh.ready.add(target.port);
    }
    if (!ready && (fresh.state === 'running' || fresh.error?.code === 'app_exited')) {
      const info = await directory.instance(fresh.id);
      const down = await appDown(directory, info);
      if (down) {
        crashed = { exitCode: down.exitCode };
        message = `The app exited with code ${down.exitCode}.`;
      }
    }
    if (fresh.state === 'error') message = fresh.error?.message ?? 'The sandbox is in error.';
    const logs = ready ? [] : await directory.lastLogLines(fresh.id, PAGE_LOG_LINES);
    sendJson(res, 200, {
      sandboxId: fresh.id,
      port: target.port,
      state: fresh.state,
      ready,
      crashed,
      message,
      logs,
    });
  } catch (err) {
    failRequest(parts.log, req, res, err);
  }
}
