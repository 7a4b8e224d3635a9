import type { OutputChunk, SandboxProvider } from '../providers/provider.js';

/** The last `n` lines the app wrote (stdout and stderr interleaved), for the starting and crashed pages. */
export async function lastLogLines(provider: SandboxProvider, sandboxId: string, n = 20): Promise<string[]> {
  try {
    const stream = await provider.logs(sandboxId, { tail: n });
    const parts: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<OutputChunk>) parts.push(chunk.data);
    const text = Buffer.concat(parts).toString('utf8');
    return text
      .split('\n')
      .filter((line, i, all) => line !== '' || i < all.length - 1)
      .slice(-n);
  } catch {
    return [];
  }
}
