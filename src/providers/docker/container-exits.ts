import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LABEL_INSTANCE, LABEL_MANAGED, sandboxIdOf } from './labels.js';

/**
 * Follows the engine's `die` events of one previewd's containers (`instance`), reconnecting after
 * errors, and reports each exit within milliseconds. Returns the function that stops following.
 */
export function watchContainerExits(
  docker: Docker,
  instance: string,
  listener: (exit: { sandboxId: string; exitCode: number }) => void,
): () => void {
  let stopped = false;
  let current: NodeJS.ReadableStream | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    if (stopped) return;
    try {
      const stream = (await docker.getEvents({
        filters: {
          type: ['container'],
          event: ['die'],
          label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${instance}`],
        },
      })) as NodeJS.ReadableStream;
      if (stopped) {
        (stream as unknown as Readable).destroy();
        return;
      }
      current = stream;
      let buffered = '';
      stream.on('data', (data: Buffer) => {
        buffered += data.toString('utf8');
        let nl = buffered.indexOf('\n');
        while (nl !== -1) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
          if (!line) continue;
          try {
            const event = JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } };
            const attrs = event.Actor?.Attributes ?? {};
            const sandboxId = sandboxIdOf(attrs, attrs.name);
            if (sandboxId) listener({ sandboxId, exitCode: Number(attrs.exitCode ?? -1) });
          } catch {
            // not an event line
          }
        }
      });
      const again = () => {
        if (current !== stream) return;
        current = undefined;
        if (!stopped) retry = setTimeout(() => void connect(), 1000);
      };
      stream.on('end', again);
      stream.on('close', again);
      stream.on('error', again);
    } catch {
      if (!stopped) retry = setTimeout(() => void connect(), 1000);
    }
  };
  void connect();
  return () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    (current as unknown as Readable | undefined)?.destroy();
    current = undefined;
  };
}
