import type { RuntimePlan } from '../domain/schemas.js';
import type { FileTree } from './file-tree.js';

/** The Python side of detection: Django (manage.py), FastAPI, Flask, and plain scripts. */

export const PYTHON_DEFAULT_PORTS = { fastapi: 8000, flask: 5000, django: 8000, python: 8000 } as const;

const PIP_INSTALL = 'python3 -m pip install --user --break-system-packages --disable-pip-version-check';

/**
 * pip installs into the user's site (~/.local): Debian's Python is "externally managed". An offline
 * check first (`--no-deps --no-index`): when the image already has every listed package (fastapi,
 * flask, django, uvicorn come from Debian) nothing is downloaded, and pip does not try to "repair"
 * the dependency pins of Debian's own packages. Otherwise a normal install.
 */
export function pipInstall(args: string): string {
  return `${PIP_INSTALL} --no-deps --no-index ${args} >/dev/null 2>&1 || ${PIP_INSTALL} ${args}`;
}

/** Entry modules tried, in order, for FastAPI/Flask apps and plain scripts. */
const PYTHON_ENTRIES = [
  'main.py',
  'app.py',
  'server.py',
  'api.py',
  'application.py',
  'app/main.py',
  'app/app.py',
  'src/main.py',
  'src/app.py',
];

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_.,:=@%+/-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Lowercased, normalised (PEP 503) project names from requirements.txt lines. */
export function requirementNames(requirements: string): string[] {
  const names: string[] = [];
  for (const line of requirements.split(/\r?\n/)) {
    const match = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(line.replace(/#.*/, ''));
    if (match && !line.trim().startsWith('-')) names.push(normalizeName(match[1]!));
  }
  return names;
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/**
 * Dependency specifiers from pyproject.toml: PEP 621 `[project] dependencies = [...]`, or the keys of
 * Poetry's `[tool.poetry.dependencies]` table (python itself excluded). A small reader, not a TOML parser.
 */
export function pyprojectDependencies(source: string): string[] {
  const lines = new Map<string, string[]>();
  let current: string[] = [];
  lines.set('', current);
  for (const line of source.split(/\r?\n/)) {
    const header = line.includes('[') ? /^\s*\[([^\]]+)\]\s*(?:#.*)?$/.exec(line) : null;
    if (header) {
      const name = header[1]!.trim();
      current = lines.get(name) ?? [];
      lines.set(name, current);
      continue;
    }
    current.push(line);
  }
  const sections = new Map(
    [...lines].map(([name, body]) => [name, body.length ? `${body.join('\n')}\n` : '']),
  );
  const project = sections.get('project') ?? '';
  // [ \t] rather than \s: with the m flag, \s would run across blank lines from every line start.
  const list = /^[ \t]*dependencies[ \t]*=[ \t]*\[/m.exec(project);
  if (list) return quotedListItems(project.slice(list.index + list[0].length));
  const poetry = sections.get('tool.poetry.dependencies');
  if (!poetry) return [];
  return [...poetry.matchAll(/^[ \t]*([A-Za-z0-9][A-Za-z0-9._-]*)[ \t]*=/gm)]
    .map((m) => m[1]!)
    .filter((name) => name.toLowerCase() !== 'python');
}

/**
 * The quoted strings of a TOML array, up to its closing bracket (brackets inside strings are
 * content). One token per step, each consumed for good: a string runs to its closing quote or the
 * end of its line (TOML strings are one line), so an unclosed quote ends the list instead of being
 * scanned again from every later quote.
 */
function quotedListItems(rest: string): string[] {
  const items: string[] = [];
  const tokens = /"((?:[^"\\\n]|\\.)*)("?)|'([^'\n]*)('?)|(\])|#[^\n]*|[^"'\]#]+/g;
  for (const m of rest.matchAll(tokens)) {
    if (m[5]) break;
    if (m[1] === undefined && m[3] === undefined) continue;
    if (!(m[2] ?? m[4])) break; // unclosed string
    const item = (m[1] ?? m[3])!.trim();
    if (item) items.push(item);
  }
  return items;
}

interface PythonApp {
  kind: 'fastapi' | 'flask';
  entry: string;
  /** Module-level variable holding the app, when one is assigned. */
  variable?: string;
}

function findApp(tree: FileTree, deps: Set<string>): PythonApp | undefined {
  const entries = PYTHON_ENTRIES.filter((p) => tree.paths.includes(p));
  for (const entry of entries) {
    const source = tree.read(entry) ?? '';
    // One line each ([ \t], [^=\n]): spanning lines, every line start would scan on to the next "=".
    const fastapi = /^([A-Za-z_]\w*)[ \t]*(?::[^=\n]+)?=[ \t]*FastAPI\(/m.exec(source);
    if (fastapi) return { kind: 'fastapi', entry, variable: fastapi[1] };
    const flask = /^([A-Za-z_]\w*)[ \t]*(?::[^=\n]+)?=[ \t]*Flask\(/m.exec(source);
    if (flask) return { kind: 'flask', entry, variable: flask[1] };
    if (/\bdef\s+create_app\s*\(/.test(source) && /\bflask\b/i.test(source)) return { kind: 'flask', entry };
  }
  // Declared but not found in an entry's source: assume the conventional `main:app` / `app:app`.
  const first = entries[0];
  if (first && deps.has('fastapi')) return { kind: 'fastapi', entry: first, variable: 'app' };
  if (first && deps.has('flask')) return { kind: 'flask', entry: first, variable: 'app' };
  return undefined;
}

/** `app/main.py` → `app.main`. */
function moduleName(entry: string): string {
  return entry.replace(/\.py$/, '').replace(/\//g, '.');
}

/**
 * Plans a Python project, or returns undefined when nothing marks the files as one
 * (no manage.py, requirements.txt, pyproject.toml or entry module).
 */
export function detectPython(tree: FileTree, image: string): RuntimePlan | undefined {
  const has = (path: string) => tree.paths.includes(path);
  const requirements = tree.read('requirements.txt');
  const pyproject = tree.read('pyproject.toml');
  const pyDeps = pyproject !== undefined ? pyprojectDependencies(pyproject) : [];
  const deps = new Set([
    ...(requirements !== undefined ? requirementNames(requirements) : []),
    ...requirementNames(pyDeps.join('\n')),
  ]);
  let install: string | undefined;
  if (has('requirements.txt')) install = pipInstall('-r requirements.txt');
  else if (pyDeps.length > 0) install = pipInstall(pyDeps.map(shellQuote).join(' '));
  const base = {
    image,
    source: 'detected' as const,
    env: { PYTHONUNBUFFERED: '1' } as Record<string, string>,
    ...(install ? { install, packageManager: 'pip' as const } : {}),
  };

  if (has('manage.py')) {
    const port = PYTHON_DEFAULT_PORTS.django;
    return { ...base, start: `python3 manage.py runserver 0.0.0.0:${port}`, port, framework: 'django' };
  }

  const app = findApp(tree, deps);
  if (app?.kind === 'fastapi') {
    const port = PYTHON_DEFAULT_PORTS.fastapi;
    const target = `${moduleName(app.entry)}:${app.variable ?? 'app'}`;
    return {
      ...base,
      start: `python3 -m uvicorn ${target} --host 0.0.0.0 --port ${port} --reload`,
      port,
      framework: 'fastapi',
    };
  }
  if (app?.kind === 'flask') {
    const port = PYTHON_DEFAULT_PORTS.flask;
    const target = app.variable ? `${moduleName(app.entry)}:${app.variable}` : moduleName(app.entry);
    return {
      ...base,
      start: `python3 -m flask --app ${target} run --host=0.0.0.0 --port=${port} --reload`,
      port,
      framework: 'flask',
    };
  }

  const entry = PYTHON_ENTRIES.find(has);
  if (!entry) return undefined;
  const port = PYTHON_DEFAULT_PORTS.python;
  return {
    ...base,
    env: { ...base.env, HOST: '0.0.0.0', PORT: String(port) },
    start: `python3 ${entry}`,
    port,
    framework: 'python',
  };
}
