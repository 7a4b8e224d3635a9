import { monotonicFactory } from 'ulid';
import { PreviewdError } from './errors.js';

const next = monotonicFactory();

/** Sandbox ids are ULIDs in lowercase: preview hosts are case-insensitive, so ids must be too. */
export function newSandboxId(): string {
  return next().toLowerCase();
}

const ID_RE = /^[0-9a-hjkmnp-tv-z]{26}$/;

export function isSandboxId(value: string): boolean {
  return ID_RE.test(value);
}

/** Accepts an id in any case (hosts and humans shout) and returns its canonical lowercase form. */
export function parseSandboxId(value: string): string {
  const id = value.toLowerCase();
  if (!isSandboxId(id)) {
    throw new PreviewdError('invalid_id', `"${value.slice(0, 64)}" is not a sandbox id`);
  }
  return id;
}
