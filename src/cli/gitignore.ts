/**
 * A .gitignore matcher for `previewd up` (the root .gitignore): blank lines and `#` comments
 * skipped, `!` re-includes, a trailing `/` matches directories only, a pattern with a `/` (other
 * than a trailing one) is anchored at the root, otherwise it matches at any depth; `*`, `?` and
 * `**` as in git. As in git, nothing inside an ignored directory can be re-included.
 */
interface Rule {
  negate: boolean;
  dirOnly: boolean;
  re: RegExp;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more directories; a trailing `**` everything below.
        if (glob[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < glob.length) out += `\\${glob[++i]}`;
    else out += /[.+^${}()|[\]]/.test(c) ? `\\${c}` : c;
  }
  return out;
}

export function parseGitignore(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.replace(/(?<!\\)\s+$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith('/');
    if (dirOnly) line = line.slice(0, -1);
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    if (line === '') continue;
    const body = globToRegExp(line);
    rules.push({ negate, dirOnly, re: new RegExp(anchored ? `^${body}$` : `(?:^|/)${body}$`) });
  }
  return rules;
}

/** Whether `path` (relative, `/`-separated) is ignored: itself, or one of its directories. */
export function isIgnored(rules: Rule[], path: string): boolean {
  if (rules.length === 0) return false;
  const parts = path.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const isDir = i < parts.length;
    let ignored = false;
    for (const rule of rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.re.test(sub)) ignored = !rule.negate;
    }
    if (ignored) return true;
  }
  return false;
}
