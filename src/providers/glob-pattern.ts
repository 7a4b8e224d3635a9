/**
 * Glob patterns (as shells and editors write them) compiled to regular expressions over
 * workspace-relative paths: `*` and `?` stay within one segment, `**` spans segments,
 * `{a,b}` alternates, `[abc]` / `[!abc]` are classes. Dot files match like any other name.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  let i = 0;
  let braces = 0;
  const p = pattern.replace(/^\.\//, '').replace(/^\/+/, '');
  while (i < p.length) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        const atSegStart = i === 0 || p[i - 1] === '/';
        const atSegEnd = i + 2 === p.length || p[i + 2] === '/';
        if (atSegStart && atSegEnd) {
          // "**/" matches zero or more directories; a trailing "**" matches everything below.
          if (p[i + 2] === '/') {
            re += '(?:[^/]+/)*';
            i += 3;
          } else {
            re += '.*';
            i += 2;
          }
          continue;
        }
        re += '[^/]*';
        i += 2;
        continue;
      }
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = p.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
      } else {
        let body = p.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replaceAll('\\', '\\\\').replaceAll('/', '')}]`;
        i = close;
      }
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) {
      re += '|';
    } else {
      re += c.replace(/[.+^$()|\\\]{}]/g, '\\$&');
    }
    i++;
  }
  while (braces-- > 0) re += ')';
  return new RegExp(`^${re}$`);
}

/** The longest leading run of segments without glob characters: where a walk can start. */
export function globBase(pattern: string): string {
  const segs = pattern.replace(/^\.\//, '').replace(/^\/+/, '').split('/');
  const base: string[] = [];
  for (const seg of segs.slice(0, -1)) {
    if (/[*?[{]/.test(seg)) break;
    base.push(seg);
  }
  return base.join('/');
}
