import { pack } from 'tar-stream';

/** A tar archive of the given files, in memory. */
export async function tarOf(entries: Record<string, string>): Promise<Buffer> {
  const tar = pack();
  for (const [name, content] of Object.entries(entries)) tar.entry({ name }, content);
  tar.finalize();
  const parts: Buffer[] = [];
  for await (const chunk of tar) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}
