import { describe, expect, it } from 'vitest';
import { PreviewdError } from '../../src/domain/errors.js';
import {
  assertTransition,
  canTransition,
  type SandboxState,
  sandboxStates,
} from '../../src/domain/state-machine.js';

const legal: [SandboxState, SandboxState][] = [
  ['creating', 'starting'],
  ['starting', 'running'],
  ['running', 'stopping'],
  ['stopping', 'stopped'],
  ['stopped', 'starting'],
  ['running', 'paused'],
  ['paused', 'running'],
  ['paused', 'stopping'],
  ['error', 'starting'],
  ['creating', 'error'],
  ['running', 'deleted'],
  ['stopped', 'deleted'],
];

const illegal: [SandboxState, SandboxState][] = [
  ['creating', 'running'],
  ['stopped', 'running'],
  ['stopped', 'paused'],
  ['paused', 'starting'],
  ['deleted', 'starting'],
  ['deleted', 'running'],
  ['stopping', 'running'],
  ['running', 'creating'],
];

describe('sandbox state machine', () => {
  it.each(legal)('%s → %s is allowed', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
    expect(() => assertTransition('x', from, to)).not.toThrow();
  });

  it.each(illegal)('%s → %s is refused with invalid_state', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
    try {
      assertTransition('x', from, to);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PreviewdError);
      expect((err as PreviewdError).code).toBe('invalid_state');
      expect((err as PreviewdError).status).toBe(409);
    }
  });

  it('deleted is terminal and every other state can be deleted', () => {
    for (const state of sandboxStates) {
      if (state === 'deleted') expect(sandboxStates.some((to) => canTransition(state, to))).toBe(false);
      else expect(canTransition(state, 'deleted')).toBe(true);
    }
  });
});
