import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { shellEnvArgs, slotPaths, slotTarget } from '../../src/pool/pool-slots.js';
import { sandboxIdOf } from '../../src/providers/docker/labels.js';

describe('warm pool slots', () => {
  it('writes an environment sh reads back exactly as arguments, whatever the values hold', () => {
    const env = {
      PLAIN: 'value',
      QUOTES: `it's "quoted" \\ and $HOME and \`id\``,
      LINES: 'one\ntwo\n',
      EMPTY: '',
      SEMI: "'; touch /tmp/nope; '",
    };
    const script = `${shellEnvArgs(env)}\nprintf '%s\\0' "$@"; printf 'exported:%s\\0' "$(env | grep -c -e PLAIN -e SEMI)"`;
    const out = execFileSync('sh', ['-c', script], { env: {} }).toString('utf8').split('\0').slice(0, -1);
    // Arguments only: sourcing it exports nothing (the waiter is root at that point).
    expect(out.pop()).toBe('exported:0');
    expect(out).toEqual(Object.entries(env).map(([k, v]) => `${k}=${v}`));
    expect(existsSync('/tmp/nope')).toBe(false);
  });

  it('refuses names sh would read as code, and NUL bytes', () => {
    expect(() => shellEnvArgs({ 'A;B': 'x' })).toThrow(/cannot be exported/);
    expect(() => shellEnvArgs({ '1A': 'x' })).toThrow(/cannot be exported/);
    expect(() => shellEnvArgs({ 'A B': 'x' })).toThrow(/cannot be exported/);
    expect(() => shellEnvArgs({ A: 'x\0y' })).toThrow(/NUL/);
  });

  it('maps container paths into the slot, and nothing outside its three roots', () => {
    const p = slotPaths('/data', 'abc123');
    expect(slotTarget(p, '/workspace')).toBe('/data/pool/abc123/mnt/workspace');
    expect(slotTarget(p, '/home/user/.npm')).toBe('/data/pool/abc123/mnt/home/.npm');
    expect(slotTarget(p, '/run/previewd')).toBe('/data/pool/abc123/mnt/run');
    expect(slotTarget(p, '/home/user/../../etc')).toBeUndefined();
    expect(slotTarget(p, '/home/user/./x')).toBeUndefined();
    expect(slotTarget(p, '/etc/shadow')).toBeUndefined();
    expect(slotTarget(p, '/workspacex')).toBeUndefined();
    expect(() => slotPaths('/data', '../x')).toThrow(/invalid pool slot/);
  });

  it('names a claimed pool container by its name, an unclaimed one by none', () => {
    const id = '01jabcdefghjkmnpqrstvwxyz0';
    expect(sandboxIdOf({ 'previewd.sandbox': id })).toBe(id);
    expect(sandboxIdOf({ 'previewd.pool': 's1' }, [`/previewd-${id}`])).toBe(id);
    expect(sandboxIdOf({ 'previewd.pool': 's1' }, ['/previewd-pool-inst-s1'])).toBeUndefined();
    expect(sandboxIdOf({}, [`/previewd-${id}`])).toBeUndefined();
    expect(sandboxIdOf({ 'previewd.pool': 's1' }, ['/other-name'])).toBeUndefined();
  });
});
