import { execFile } from 'node:child_process';

export interface IptablesResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Set when the binary could not be run at all (ENOENT: not installed). */
  spawnError?: NodeJS.ErrnoException;
}

/** Runs the iptables binaries with argument arrays (never a shell), waiting for the xtables lock. */
export class Iptables {
  constructor(
    private readonly bin = 'iptables',
    private readonly restoreBin = 'iptables-restore',
  ) {}

  private exec(file: string, args: string[], input?: string): Promise<IptablesResult> {
    return new Promise((done) => {
      const child = execFile(
        file,
        args,
        { encoding: 'utf8', timeout: 15_000, maxBuffer: 4 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { code?: unknown }) | null;
          if (e && typeof e.code === 'string' && e.code === 'ENOENT') {
            done({ ok: false, stdout: '', stderr: e.message, spawnError: e });
            return;
          }
          done({ ok: !err, stdout, stderr: stderr || (err ? err.message : '') });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  /** `iptables -w 10 <args>`. */
  run(args: string[]): Promise<IptablesResult> {
    return this.exec(this.bin, ['-w', '10', ...args]);
  }

  /** `iptables-restore --noflush` of `script`: one atomic change of the chains it names. */
  restore(script: string): Promise<IptablesResult> {
    return this.exec(this.restoreBin, ['-w', '10', '--noflush'], script);
  }

  /** The rules of one chain as `iptables -S` prints them, or undefined when the chain does not exist. */
  async list(chain: string, table?: 'nat'): Promise<string[] | undefined> {
    const res = await this.run([...(table ? ['-t', table] : []), '-S', chain]);
    if (!res.ok) return undefined;
    return res.stdout.split('\n').filter((l) => l.trim() !== '');
  }

  /** The version line (`iptables v1.8.9 (nf_tables)`), or undefined when the binary does not run. */
  async version(): Promise<IptablesResult> {
    return this.exec(this.bin, ['-V']);
  }
}
