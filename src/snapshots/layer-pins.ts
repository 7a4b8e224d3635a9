/**
 * Layers a create or fork of this process is about to put into a stack (between reading what the
 * snapshot holds and writing the new sandbox's stack.json): the layer collection leaves them.
 * Counted, so two creates from one snapshot pin and unpin independently.
 */
const pins = new Map<string, number>();

export function pinLayers(keys: readonly string[]): () => void {
  for (const k of keys) pins.set(k, (pins.get(k) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const k of keys) {
      const n = (pins.get(k) ?? 1) - 1;
      if (n <= 0) pins.delete(k);
      else pins.set(k, n);
    }
  };
}

export function isPinned(key: string): boolean {
  return pins.has(key);
}
