import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';

const GOLDEN_DIR = join(import.meta.dirname, '..', 'golden');

/**
 * Compares `value` with the JSON in test/golden/<name>. `UPDATE_GOLDEN=1` rewrites the file;
 * a missing golden file fails (it must be written on purpose and reviewed).
 */
export function expectGolden(name: string, value: unknown): void {
  const file = join(GOLDEN_DIR, name);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    return;
  }
  if (!existsSync(file))
    throw new Error(`golden file ${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
  // Compared as data, so reformatting the golden file (biome) does not break it.
  const golden: unknown = JSON.parse(readFileSync(file, 'utf8'));
  expect(JSON.parse(text), `differs from golden file ${name} (UPDATE_GOLDEN=1 rewrites it)`).toEqual(golden);
}
