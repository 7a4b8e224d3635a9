import { type Previewd, PreviewdError, type Sandbox } from '@previewd/sdk';

/** A sandbox by its id, or by a unique prefix of it (as `ls` shows them). */
export async function findSandbox(client: Previewd, ref: string): Promise<Sandbox> {
  const id = ref.trim().toLowerCase();
  if (id.length === 26) return client.sandboxes.get(id);
  if (id.length < 4) {
    throw new PreviewdError('invalid_id', `"${ref}" is too short to name a sandbox`, {
      hint: 'Give the id, or at least 4 of its first characters (previewd ls shows them).',
    });
  }
  const matches: Sandbox[] = [];
  for await (const s of client.sandboxes.all({ limit: 500 })) if (s.id.startsWith(id)) matches.push(s);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    throw new PreviewdError('sandbox_not_found', `no sandbox id starts with "${ref}"`, {
      status: 404,
      hint: 'List sandboxes with: previewd ls',
    });
  }
  throw new PreviewdError('invalid_id', `"${ref}" matches ${matches.length} sandboxes`, {
    hint: 'Give more characters of the id.',
  });
}
