/** Labels previewd puts on everything it creates in the engine, so it can always re-find its own. */
export const LABEL_MANAGED = 'previewd.managed';
export const LABEL_SANDBOX = 'previewd.sandbox';
/** Which previewd (data dir) owns it: several control planes can share one engine without removing each other's containers. */
export const LABEL_INSTANCE = 'previewd.instance';

export function containerName(sandboxId: string): string {
  return `previewd-${sandboxId}`;
}

export function managedLabels(sandboxId: string, instance: string): Record<string, string> {
  return { [LABEL_MANAGED]: 'true', [LABEL_SANDBOX]: sandboxId, [LABEL_INSTANCE]: instance };
}

/** On warm pool containers (src/pool/): the slot they were made for. Labels cannot change at a claim. */
export const LABEL_POOL = 'previewd.pool';
/** The name prefix of unclaimed warm pool containers. */
export const POOL_NAME_PREFIX = 'previewd-pool-';

/**
 * The sandbox a container belongs to: its label, or for a claimed warm pool container (renamed
 * to containerName(id) at the claim) the name. Unclaimed pool containers belong to none.
 */
export function sandboxIdOf(
  labels: Record<string, string> | undefined,
  names: string[] | string = [],
): string | undefined {
  const own = labels?.[LABEL_SANDBOX];
  if (own) return own;
  if (!labels?.[LABEL_POOL]) return undefined;
  for (const raw of typeof names === 'string' ? [names] : names) {
    const name = raw.replace(/^\//, '');
    if (name.startsWith(POOL_NAME_PREFIX) || !name.startsWith('previewd-')) continue;
    const id = name.slice('previewd-'.length);
    if (/^[A-Za-z0-9_-]{1,64}$/.test(id)) return id;
  }
  return undefined;
}
