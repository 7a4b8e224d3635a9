/** The last `n` lines of a log stream (stdout and stderr interleaved), for the starting and crashed pages. */
export async function lastLines(chunks: AsyncIterable<{ data: Buffer }>, n: number): Promise<string[]> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk.data);
  const text = Buffer.concat(parts).toString('utf8');
  return text
    .split('\n')
    .filter((line, i, all) => line !== '' || i < all.length - 1)
    .slice(-n);
}
