/** The events an NDJSON event stream (`/v1/events`, `/v1/sandboxes/{id}/events`) carried within `ms`. */
export async function readEventsFor(url: string, key: string, ms = 700): Promise<any[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  let text = '';
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${key}`, accept: 'application/x-ndjson' },
      signal: controller.signal,
    });
    if (res.status !== 200) throw new Error(`${url}: status ${res.status}`);
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((e) => e.sandboxId);
}
