import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRegularFile, readRegularFileIfExists } from '../../src/providers/safe-read.js';

describe('safe-read: opening files a sandbox controls', () => {
  let dir: string;
  let socketServer: Server;
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'read',
      (err: { code?: string; details?: { type?: string } }) => `${err.code}:${err.details?.type ?? ''}`,
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'previewd-safe-read-'));
    writeFileSync(join(dir, 'file.txt'), 'hello');
    writeFileSync(join(dir, 'big.txt'), 'x'.repeat(1000));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    symlinkSync(join(dir, 'file.txt'), join(dir, 'link'));
    mkdirSync(join(dir, 'sub'));
    socketServer = createServer();
    await new Promise<void>((resolve) => socketServer.listen(join(dir, 'socket'), resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => socketServer.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a regular file', async () => {
    expect((await readRegularFile(join(dir, 'file.txt'), { maxBytes: 5 })).toString()).toBe('hello');
  });

  it('refuses, without waiting for a writer, a FIFO; and a link, a directory, a socket', async () => {
    // Four FIFO opens at once: the old blocking open held all four libuv threads for good.
    const fifos = await Promise.all(
      [1, 2, 3, 4, 5].map(() => codeOf(readRegularFile(join(dir, 'fifo'), { maxBytes: 10 }))),
    );
    expect(fifos).toEqual(Array(5).fill('not_a_regular_file:fifo'));
    expect(await codeOf(readRegularFile(join(dir, 'link'), { maxBytes: 10 }))).toBe(
      'not_a_regular_file:symlink',
    );
    expect(await codeOf(readRegularFile(join(dir, 'sub'), { maxBytes: 10 }))).toBe(
      'not_a_regular_file:directory',
    );
    expect(await codeOf(readRegularFile(join(dir, 'socket'), { maxBytes: 10 }))).toBe(
      'not_a_regular_file:other',
    );
    // The file threads are free: a plain read still answers.
    expect((await readRegularFile(join(dir, 'file.txt'), { maxBytes: 5 })).toString()).toBe('hello');
  });

  it('stops at the size cap with file_too_large; a missing file is file_not_found, or absent', async () => {
    expect(await codeOf(readRegularFile(join(dir, 'big.txt'), { maxBytes: 999 }))).toBe('file_too_large:');
    expect((await readRegularFile(join(dir, 'big.txt'), { maxBytes: 1000 })).length).toBe(1000);
    expect(await codeOf(readRegularFile(join(dir, 'nope'), { maxBytes: 1 }))).toBe('file_not_found:');
    expect(await readRegularFileIfExists(join(dir, 'nope'), { maxBytes: 1 })).toBeUndefined();
    expect(await codeOf(readRegularFileIfExists(join(dir, 'fifo'), { maxBytes: 1 }))).toBe(
      'not_a_regular_file:fifo',
    );
  });
});
