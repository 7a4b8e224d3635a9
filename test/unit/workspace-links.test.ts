import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkspaceFiles } from '../../src/providers/workspace-fs.js';

/**
 * What a link in a workspace means to the files API (docs/io.md, "What a link means"), on a real
 * directory: followed only within the workspace, component by component; relative from the link's
 * directory, `..` back to the directory before, absolute under /workspace from the root; anything
 * that leaves the workspace refused. What the API makes belongs to the workspace's owner.
 */
describe('links in a workspace (real file system)', () => {
  let base: string;
  let root: string;
  let files: WorkspaceFiles;
  const owner = { uid: 123_456, gid: 123_457 };
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: { code?: string; details?: { reason?: string } }) =>
        `${err.code}${err.details?.reason ? `:${err.details.reason}` : ''}`,
    );

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'previewd-links-'));
    root = join(base, 'workspace');
    mkdirSync(join(root, 'target', 'deep'), { recursive: true });
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(root, 'target', 'a.txt'), 'A');
    writeFileSync(join(root, 'target', 'deep', 'b.txt'), 'B');
    writeFileSync(join(base, 'outside.txt'), 'OUTSIDE');
    symlinkSync('target', join(root, 'rel'));
    symlinkSync('../target/deep', join(root, 'sub', 'up'));
    symlinkSync('/workspace/target', join(root, 'abs'));
    symlinkSync('/workspace', join(root, 'ws'));
    symlinkSync(base, join(root, 'host'));
    symlinkSync('../outside.txt', join(root, 'climb'));
    symlinkSync('..', join(root, 'parent'));
    symlinkSync('/etc', join(root, 'etc'));
    symlinkSync('loop2', join(root, 'loop1'));
    symlinkSync('loop1', join(root, 'loop2'));
    files = new WorkspaceFiles(root, owner, '/workspace');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('follows links that stay inside, as the container resolves them', async () => {
    expect((await files.read('rel/a.txt')).toString()).toBe('A');
    expect((await files.read('sub/up/b.txt')).toString()).toBe('B');
    expect((await files.read('abs/deep/b.txt')).toString()).toBe('B');
    expect((await files.read('ws/target/a.txt')).toString()).toBe('A');
    expect((await files.resolve('sub/up')).rel).toEqual(['target', 'deep']);
    expect((await files.list('abs')).map((e) => e.path)).toEqual(['target/a.txt', 'target/deep']);
  });

  it('refuses every link that leaves the workspace, and loops', async () => {
    expect(await refusal(files.read('host/outside.txt'))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.read('climb'))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.read('parent/outside.txt'))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.read('etc/passwd'))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.write('host/planted.txt', 'x'))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.mkdir('etc/planted'))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.chmod('climb', 0o777))).toBe('invalid_path:outside_workspace');
    expect(await refusal(files.read('loop1'))).toBe('invalid_path');
    expect(readFileSync(join(base, 'outside.txt'), 'utf8')).toBe('OUTSIDE');
    expect(statSync(join(base, 'outside.txt')).mode & 0o777).not.toBe(0o777);
  });

  it('describes and removes a link itself; moves replace a link, never its target', async () => {
    expect(await files.stat('host')).toMatchObject({ type: 'symlink', target: base });
    await files.remove('host', { recursive: true });
    expect(() => lstatSync(join(root, 'host'))).toThrow();
    expect(readFileSync(join(base, 'outside.txt'), 'utf8')).toBe('OUTSIDE');
    await files.write('moved.txt', 'M');
    await files.move('moved.txt', 'climb');
    expect(lstatSync(join(root, 'climb')).isFile()).toBe(true);
    expect(readFileSync(join(base, 'outside.txt'), 'utf8')).toBe('OUTSIDE');
  });

  it("gives what it makes to the workspace's owner, parents included", async () => {
    await files.write('made/one/two.txt', 'x');
    await files.mkdir('dirs/a/b');
    await files.write('abs/through-link.txt', 'y');
    for (const p of [
      'made',
      'made/one',
      'made/one/two.txt',
      'dirs',
      'dirs/a',
      'dirs/a/b',
      'target/through-link.txt',
    ]) {
      const st = statSync(join(root, p));
      expect([p, st.uid, st.gid]).toEqual([p, owner.uid, owner.gid]);
    }
  });
});
