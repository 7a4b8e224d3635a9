/** Reads an answer's body up to a byte bound, then stops reading (the rest is never buffered). */
export async function readBounded(
  res: Response,
  maxBytes: number,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (!res.body) return { bytes: new Uint8Array(), truncated: false };
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = maxBytes - size;
      if (value.byteLength > room) {
        parts.push(value.subarray(0, room));
        size += room;
        truncated = true;
        break;
      }
      parts.push(value);
      size += value.byteLength;
    }
  } finally {
    if (truncated) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return { bytes, truncated };
}

/** UTF-8 text of bytes cut at a bound: a character split by the cut is dropped, not mangled. */
export function decodeCut(bytes: Uint8Array, truncated: boolean): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return truncated && text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
}
