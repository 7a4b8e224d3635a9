import type { ChildProcess } from 'node:child_process';

/** What a GET from inside a host's namespace got: the status and body, or the error's code. */
export type ProbeResult = { status: number; body: string } | { error: string };

const SCRIPT = `
const [url, ms] = process.argv.slice(1);
fetch(url, { signal: AbortSignal.timeout(Number(ms)) })
  .then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })))
  .catch((e) => console.log(JSON.stringify({ error: String(e.cause?.code ?? e.name ?? e) })));
`;

/** GETs `url` with this machine's Node, run inside a host's namespaces by `spawnIn`. */
export function probe(
  spawnIn: (cmd: string, args: string[]) => ChildProcess,
  url: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  if (!/^http:\/\/[^\s/]+(\/\S*)?$/.test(url)) return Promise.reject(new Error(`not an http URL: ${url}`));
  const ms = Math.max(100, Math.min(timeoutMs, 60_000));
  return new Promise((resolvePromise, reject) => {
    const child = spawnIn(process.execPath, ['-e', SCRIPT, url, String(ms)]);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => {
      out += String(d);
    });
    child.stderr?.on('data', (d) => {
      err += String(d);
    });
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolvePromise(JSON.parse(out.trim()) as ProbeResult);
      } catch {
        reject(
          new Error(`probe of ${url} printed ${JSON.stringify(out)} (stderr: ${err.trim().slice(0, 500)})`),
        );
      }
    });
  });
}
