import { ApiError } from './api-client';
import type { Sandbox } from './types';
import type { CollectedFiles } from './upload-files';

/** Largest JSON body of one `files/batch` request, in bytes (a single larger file goes alone). */
export const BATCH_BYTES = 8_000_000;

/** Where an upload stands: `ratio` 0..1 over the create request and every batch, by bytes. */
export interface UploadProgress {
  ratio: number;
  label: string;
}

/** Binary files that did not land: their paths, the API's message and hint. */
export interface UploadFailure {
  paths: string[];
  message: string;
  hint?: string;
}

/** The sandbox exists (with its text files), but some binary files failed to upload. */
export class UploadIncomplete extends Error {
  constructor(
    readonly sandbox: Sandbox,
    readonly failures: UploadFailure[],
    readonly total: number,
  ) {
    const failed = failures.reduce((n, f) => n + f.paths.length, 0);
    super(`Sandbox ${sandbox.id} was created, but ${failed} of ${total} binary file(s) did not upload.`);
  }
}

const encoder = new TextEncoder();
const byteLength = (text: string) => encoder.encode(text).length;

function base64(bytes: Uint8Array): string {
  // btoa takes a "binary string"; chunks of a multiple of 3 bytes encode without padding between them.
  const chunk = 3 * 8192;
  let out = '';
  for (let i = 0; i < bytes.length; i += chunk) {
    out += btoa(String.fromCharCode(...bytes.subarray(i, i + chunk)));
  }
  return out;
}

const batchOverhead = byteLength(JSON.stringify({ encoding: 'base64', files: {} }));

/** `"path":"<base64>",` in the batch body, in bytes. */
function entryBytes(path: string, bytes: Uint8Array): number {
  return byteLength(JSON.stringify(path)) + 4 + 4 * Math.ceil(bytes.length / 3);
}

/** Groups the binary files into batches whose JSON body stays under `limit` bytes. */
export function planBatches(
  binary: Record<string, Uint8Array>,
  limit = BATCH_BYTES,
): { paths: string[]; bytes: number }[] {
  const batches: { paths: string[]; bytes: number }[] = [];
  let current = { paths: [] as string[], bytes: batchOverhead };
  for (const [path, bytes] of Object.entries(binary)) {
    const size = entryBytes(path, bytes);
    if (current.paths.length && current.bytes + size > limit) {
      batches.push(current);
      current = { paths: [], bytes: batchOverhead };
    }
    current.paths.push(path);
    current.bytes += size;
  }
  if (current.paths.length) batches.push(current);
  return batches;
}

/**
 * One JSON request through XMLHttpRequest, for its upload progress (fetch has none).
 * `onSent` gets the bytes of the body sent so far.
 */
function sendJson<T>(method: string, url: string, body: string, onSent: (bytes: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/json');
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.response as T);
        return;
      }
      const err = (xhr.response as { error?: { code: string; message: string; hint?: string } } | null)
        ?.error;
      reject(
        new ApiError(xhr.status, err?.code ?? 'http_error', err?.message ?? `HTTP ${xhr.status}`, err?.hint),
      );
    };
    xhr.onerror = () =>
      reject(new ApiError(0, 'network', 'The upload failed: the server could not be reached.'));
    xhr.send(body);
  });
}

/**
 * Creates a sandbox from collected files: `POST /v1/sandboxes` with the text files, then the
 * binary ones through `POST /v1/sandboxes/{id}/files/batch` (base64), in batches under
 * `BATCH_BYTES`. `onCreated` is called as soon as the sandbox exists. Rejects with an ApiError
 * when the create fails, with UploadIncomplete when some binary files failed.
 */
export async function createFromFiles(
  upload: CollectedFiles,
  options: Record<string, unknown>,
  onProgress: (p: UploadProgress) => void,
  onCreated: (s: Sandbox) => void,
): Promise<Sandbox> {
  const createBody = JSON.stringify({ ...options, files: upload.files });
  const batches = planBatches(upload.binary);
  const total = byteLength(createBody) + batches.reduce((n, b) => n + b.bytes, 0);
  let done = 0;
  const report = (sent: number, label: string) =>
    onProgress({ ratio: Math.min(1, (done + sent) / total), label });

  const createLabel = 'Creating the sandbox with the text files…';
  report(0, createLabel);
  const sandbox = await sendJson<Sandbox>('POST', '/v1/sandboxes', createBody, (sent) =>
    report(sent, createLabel),
  );
  done += byteLength(createBody);
  onCreated(sandbox);

  const failures: UploadFailure[] = [];
  const url = `/v1/sandboxes/${encodeURIComponent(sandbox.id)}/files/batch`;
  let fatal: ApiError | null = null;
  for (const [i, batch] of batches.entries()) {
    const label = `Uploading binary files (${batch.paths.length} in batch ${i + 1} of ${batches.length})…`;
    report(0, label);
    if (fatal) {
      // The session ended, the sandbox is gone or the server is unreachable: the rest would fail alike.
      failures.push({ paths: batch.paths, message: fatal.message, hint: fatal.hint });
      continue;
    }
    const files: Record<string, string> = {};
    for (const path of batch.paths) files[path] = base64(upload.binary[path] ?? new Uint8Array());
    try {
      const result = await sendJson<{ skipped?: { path: string; reason: string }[] }>(
        'POST',
        url,
        JSON.stringify({ encoding: 'base64', files }),
        (sent) => report(sent, label),
      );
      for (const s of result?.skipped ?? []) failures.push({ paths: [s.path], message: s.reason });
    } catch (err) {
      const apiErr =
        err instanceof ApiError
          ? err
          : new ApiError(0, 'upload_failed', String((err as Error)?.message ?? err));
      failures.push({ paths: batch.paths, message: apiErr.message, hint: apiErr.hint });
      if ([0, 401, 404].includes(apiErr.status)) fatal = apiErr;
    }
    done += batch.bytes;
  }
  report(0, 'Done.');
  if (failures.length) throw new UploadIncomplete(sandbox, failures, Object.keys(upload.binary).length);
  return sandbox;
}
