import { describe, expect, it } from 'vitest';
import { isIgnored, parseGitignore } from '../../src/cli/gitignore.js';

describe('gitignore matcher (previewd up)', () => {
  const rules = parseGitignore(
    [
      '# comment',
      '',
      'dist/',
      '*.log',
      '/secret.txt',
      'build/**/*.map',
      '!keep.log',
      'docs/*.tmp',
      '.env*',
    ].join('\n'),
  );
  const table: [string, boolean][] = [
    ['dist/index.js', true],
    ['src/dist/x.js', true],
    ['dist', false], // a file named dist: `dist/` matches directories only
    ['app.log', true],
    ['logs/app.log', true],
    ['keep.log', false],
    ['secret.txt', true],
    ['src/secret.txt', false],
    ['build/a/b/c.js.map', true],
    ['build/c.js.map', true],
    ['build/c.js', false],
    ['docs/a.tmp', true],
    ['docs/sub/a.tmp', false],
    ['.env.local', true],
    ['src/App.jsx', false],
  ];
  for (const [path, ignored] of table) {
    it(`${path} → ${ignored ? 'ignored' : 'kept'}`, () => {
      expect(isIgnored(rules, path)).toBe(ignored);
    });
  }
});
