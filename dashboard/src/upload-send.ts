import { type Zippable, zipSync } from 'fflate';
import { ApiError, signalUnauthorized } from './api-client';
import type { CreateSandboxRequest, Sandbox } from './types';
import type { CollectedFiles } from './upload-files';

/** Where an upload stands: `ratio` 0..1 of the archive's bytes sent. */
export interface UploadProgress {
  ratio: number;
  label: string;
}

/** The `X-Previewd-Create` header holds at most this many characters (docs/sources.md). */
const HEADER_LIMIT = 8192;

/** Already compressed by their format: stored as they are, not deflated again. */
const stored = /\.(png|jpe?g|gif|webp|avif|ico|woff2?|zip|gz|tgz|br|zst|mp[34]|webm|ogg|pdf)$/i;

/**
 * One zip of every collected file, text and binary alike, so the whole project is in the
 * workspace before the app starts (fflate's synchronous zip: its async form needs workers from
 * blob: URLs, which the page's CSP does not allow).
 */
export function zipOfUpload(upload: CollectedFiles): Uint8Array {
  const encoder = new TextEncoder();
  const tree: Zippable = {};
  for (const [path, text] of Object.entries(upload.files)) tree[path] = [encoder.encode(text), {}];
  for (const [path, bytes] of Object.entries(upload.binary))
    tree[path] = [bytes, stored.test(path) ? { level: 0 } : {}];
  return zipSync(tree, { level: 6 });
}

/** The create options as the header carries them: JSON, or base64url of it when not ASCII. */
export function createHeader(options: CreateSandboxRequest): string {
  const json = JSON.stringify(options);
  if (/^[\x20-\x7e]*$/.test(json)) return json;
  const bytes = new TextEncoder().encode(json);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Creates a sandbox from collected files in ONE request: `POST /v1/sandboxes` with a zip body,
 * the options in `X-Previewd-Create` (docs/sources.md). Sent through XMLHttpRequest for its
 * upload progress (fetch has none). Rejects with an ApiError (the API's code, message and hint).
 */
export function createFromFiles(
  upload: CollectedFiles,
  options: CreateSandboxRequest,
  onProgress: (p: UploadProgress) => void,
): Promise<Sandbox> {
  const header = createHeader(options);
  if (header.length > HEADER_LIMIT)
    return Promise.reject(
      new ApiError(0, 'invalid_request', 'The create options are too long for the X-Previewd-Create header.'),
    );
  onProgress({ ratio: 0, label: 'Packing the files…' });
  const body = zipOfUpload(upload);
  const label = `Uploading ${Math.max(1, Math.round(body.length / 1024))} kB (one zip)…`;
  onProgress({ ratio: 0, label });
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/sandboxes');
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/zip');
    xhr.setRequestHeader('x-previewd-create', header);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => onProgress({ ratio: e.total ? e.loaded / e.total : 0, label });
    xhr.upload.onload = () => onProgress({ ratio: 1, label: 'Unpacking in the workspace…' });
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.response as Sandbox);
        return;
      }
      if (xhr.status === 401) signalUnauthorized();
      const err = (xhr.response as { error?: { code: string; message: string; hint?: string } } | null)
        ?.error;
      reject(
        new ApiError(xhr.status, err?.code ?? 'http_error', err?.message ?? `HTTP ${xhr.status}`, err?.hint),
      );
    };
    xhr.onerror = () =>
      reject(new ApiError(0, 'network', 'The upload failed: the server could not be reached.'));
    // zipSync's bytes live in a plain ArrayBuffer (never a shared one).
    xhr.send(body as Uint8Array<ArrayBuffer>);
  });
}
