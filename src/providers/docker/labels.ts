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
