import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const FIXTURE_PROJECTS = new URL('../fixtures/projects/', import.meta.url).pathname;

/** A fixture project as a files map (workspace path → content), like a create request's `files`. */
export function readFixtureProject(name: string): Record<string, string> {
  const root = join(FIXTURE_PROJECTS, name);
  const files: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files[relative(root, full).split('\\').join('/')] = readFileSync(full, 'utf8');
    }
  };
  walk(root);
  return files;
}

export function fixtureProjectNames(): string[] {
  return readdirSync(FIXTURE_PROJECTS, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}
