import { describe, expect, it } from 'vitest';
import { compileGlob, GLOB_LIMITS } from '../../src/providers/glob-pattern.js';

describe('compileGlob: matching', () => {
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
    ['{src,lib}/*.ts', 'lib/a.ts', true],
    ['{src,lib}/*.ts', 'test/a.ts', false],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file/.txt', false],
    ['[ab].md', 'a.md', true],
    ['[!ab].md', 'a.md', false],
    ['[!ab].md', 'c.md', true],
    ['a.b', 'aXb', false],
    ['./src/*.js', 'src/a.js', true],
    ['(x)+.js', '(x)+.js', true],
    ['**', '.env', true],
    ['**/.git/*', 'a/.git/config', true],
    ['*', '.env', true],
    // Syntax picomatch would give a meaning is literal here, as in a file name.
    ['*(a|b).js', 'x(a|b).js', true],
    ['*(a|b).js', 'xa.js', false],
    ['+(a).js', 'a.js', false],
    ['+(a).js', '+(a).js', true],
    ['{a|b,c}.js', 'a|b.js', true],
    ['{a|b,c}.js', 'a.js', false],
    ['"a*".js', '"a1".js', true],
    ['!a', '!a', true],
    ['!a', 'b', false],
    ['\\*.js', '*.js', true],
    ['\\*.js', 'a.js', false],
    // `**` matches zero or more segments, in the middle too.
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['**/a/**/b', 'x/a/y/a/z/b', true],
  ];
  it.each(cases)('%s matches %s: %s', (pattern, path, expected) => {
    expect(compileGlob(pattern).matches(path)).toBe(expected);
  });

  it('starts the walk below the leading literal segments', () => {
    expect(compileGlob('src/**/*.ts').base).toBe('src');
    expect(compileGlob('**/*.ts').base).toBe('');
    expect(compileGlob('a/b/c.txt').base).toBe('a/b');
    expect(compileGlob('a/{b,c}/d').base).toBe('a');
  });

  it('steps one directory at a time, and tells when nothing below can match', () => {
    const g = compileGlob('src/*/index.*');
    const app = g.step(g.start, 'app');
    expect(app).toEqual({ matches: false, below: expect.any(Array) });
    expect(g.step(app.below!, 'index.html')).toEqual({ matches: true });
    expect(g.step(app.below!, 'main.ts')).toEqual({ matches: false });
    const any = compileGlob('**');
    expect(any.step(any.start, 'x').below).toBeDefined();
  });
});

describe('compileGlob: bounds', () => {
  const refused = (pattern: string) => {
    try {
      compileGlob(pattern);
    } catch (err) {
      return (err as { code?: string }).code;
    }
    return 'accepted';
  };

  it('refuses patterns past the limits with invalid_pattern', () => {
    expect(refused('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b')).toBe('invalid_pattern');
    expect(refused('*a*a*b')).toBe('invalid_pattern');
    expect(refused('*a*/*b*/*c')).toBe('invalid_pattern'); // 5 stars in all
    expect(refused('a'.repeat(GLOB_LIMITS.length + 1))).toBe('invalid_pattern');
    expect(
      refused(
        Array(GLOB_LIMITS.segments + 1)
          .fill('a')
          .join('/'),
      ),
    ).toBe('invalid_pattern');
    expect(
      refused(
        Array(GLOB_LIMITS.globstars + 1)
          .fill('**')
          .join('/'),
      ),
    ).toBe('invalid_pattern');
    expect(refused('{a,b}{c,d}')).toBe('invalid_pattern');
    expect(refused('{a,{b,c}}')).toBe('invalid_pattern');
    expect(refused(`{${'a,'.repeat(GLOB_LIMITS.alternatives)}a}`)).toBe('invalid_pattern');
    expect(refused('?'.repeat(GLOB_LIMITS.singles + 1))).toBe('invalid_pattern');
    expect(refused('{src/a,lib}/*.ts')).toBe('invalid_pattern');
    expect(refused('./')).toBe('invalid_pattern');
  });

  it('refuses patterns that leave the workspace with invalid_path', () => {
    expect(refused('../*')).toBe('invalid_path');
    expect(refused('a/../../b')).toBe('invalid_path');
    expect(refused('/etc/*')).toBe('invalid_path');
    expect(refused('a\0b')).toBe('invalid_path');
  });

  it('reads a pattern made of characters it escapes (each doubles) as a literal, not an error', () => {
    const parens = `*${'()'.repeat(200)}`;
    expect(refused(parens)).toBe('accepted');
    expect(compileGlob(parens).matches(`x${'()'.repeat(200)}`)).toBe(true);
  });

  it('accepts patterns at the limits', () => {
    expect(refused('**/*a*/**/*{a,b,c,d,e,f,g,h}*')).toBe('accepted');
    expect(refused(`${'?'.repeat(GLOB_LIMITS.singles)}`)).toBe('accepted');
    expect(refused(Array(GLOB_LIMITS.globstars).fill('**').join('/'))).toBe('accepted');
    expect(refused('a'.repeat(255))).toBe('accepted');
  });
});
