import { describe, expect, it } from 'vitest';
import { isSandboxId, newSandboxId, parseSandboxId } from '../../src/domain/ids.js';

describe('sandbox ids', () => {
  it('are lowercase ULIDs, unique and ordered', () => {
    const ids = Array.from({ length: 1000 }, () => newSandboxId());
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-z]{26}$/);
      expect(id).toBe(id.toLowerCase());
      expect(isSandboxId(id)).toBe(true);
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it.each([
    ['01HZX3J6Q8K9M2N4P5R7S8T9VW', '01hzx3j6q8k9m2n4p5r7s8t9vw'],
    ['01hzx3j6q8k9m2n4p5r7s8t9vw', '01hzx3j6q8k9m2n4p5r7s8t9vw'],
  ])('parses %s case-insensitively', (input, expected) => {
    expect(parseSandboxId(input)).toBe(expected);
  });

  it.each([
    '',
    'abc',
    '01hzx3j6q8k9m2n4p5r7s8t9v',
    '01hzx3j6q8k9m2n4p5r7s8t9vwx',
    '01hzx3j6q8k9m2n4p5r7s8t9vu',
    '../etc/passwd',
  ])('refuses %j with invalid_id', (input) => {
    expect(() => parseSandboxId(input)).toThrowError(expect.objectContaining({ code: 'invalid_id' }));
  });
});
