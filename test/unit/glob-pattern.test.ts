import { describe, expect, it } from 'vitest';
import { globBase, globToRegExp } from '../../src/providers/glob-pattern.js';

describe('globToRegExp', () => {
  const cases: [string, string, boolean][] = [
    ['*.ts', 'a.ts', true],
    ['*.ts', 'src/a.ts', false],
    ['**/*.ts', 'a.ts', true],
    ['**/*.ts', 'src/deep/a.ts', true],
    ['src/**', 'src/a/b/c', true],
    ['src/**', 'srcx/a', false],
    ['src/*/index.*', 'src/app/index.html', true],
    ['src/*/index.*', 'src/a/b/index.html', false],
    ['**/*.{ts,tsx}', 'x/y.tsx', true],
    ['**/*.{ts,tsx}', 'x/y.js', false],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file/.txt', false],
    ['[ab].md', 'a.md', true],
    ['[!ab].md', 'a.md', false],
    ['[!ab].md', 'c.md', true],
    ['a.b', 'aXb', false],
    ['./src/*.js', 'src/a.js', true],
    ['(x)+.js', '(x)+.js', true],
    ['**', '.env', true],
  ];
  it.each(cases)('%s matches %s: %s', (pattern, path, expected) => {
    expect(globToRegExp(pattern).test(path)).toBe(expected);
  });
});

describe('globBase', () => {
  it.each([
    ['src/**/*.ts', 'src'],
    ['**/*.ts', ''],
    ['a/b/c.txt', 'a/b'],
    ['a/{b,c}/d', 'a'],
  ])('%s starts at "%s"', (pattern, base) => {
    expect(globBase(pattern)).toBe(base);
  });
});
