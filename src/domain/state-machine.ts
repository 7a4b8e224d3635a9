import { PreviewdError } from './errors.js';

export const sandboxStates = [
  'creating',
  'starting',
  'running',
  'paused',
  'stopping',
  'stopped',
  'error',
  'deleted',
] as const;

export type SandboxState = (typeof sandboxStates)[number];

/** Every legal move of a sandbox. One table; SandboxService is the only caller of `assertTransition`. */
const transitions: Record<SandboxState, readonly SandboxState[]> = {
  creating: ['starting', 'error', 'deleted'],
  starting: ['running', 'stopping', 'error', 'deleted'],
  running: ['stopping', 'paused', 'starting', 'error', 'deleted'],
  paused: ['running', 'stopping', 'error', 'deleted'],
  stopping: ['stopped', 'error', 'deleted'],
  stopped: ['starting', 'deleted', 'error'],
  error: ['starting', 'stopping', 'deleted'],
  deleted: [],
};

export function canTransition(from: SandboxState, to: SandboxState): boolean {
  return transitions[from].includes(to);
}

export function allowedFrom(from: SandboxState): readonly SandboxState[] {
  return transitions[from];
}

export function assertTransition(id: string, from: SandboxState, to: SandboxState): void {
  if (!canTransition(from, to)) {
    const allowed = transitions[from];
    throw new PreviewdError(
      'invalid_state',
      `sandbox ${id} is ${from} and cannot become ${to}` +
        (allowed.length ? ` (from ${from} it can become: ${allowed.join(', ')})` : ''),
      { details: { state: from, wanted: to } },
    );
  }
}

/** States in which an operation is under way and the reconciler must finish or fail it. */
export const transitionalStates: readonly SandboxState[] = ['creating', 'starting', 'stopping'];
/** States in which a container is expected to exist and run. */
export const liveStates: readonly SandboxState[] = ['running', 'paused'];
