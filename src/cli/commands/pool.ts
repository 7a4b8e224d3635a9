import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { run, table, writeJson, writeLine } from '../output.js';

/** `pool`: the warm pool of the node that answers (an admin key; docs/pool.md). */
export function registerPoolCommands(program: Command, load: () => LoadedConfig): void {
  program
    .command('pool')
    .description('Show the warm pool: pre-started containers per runtime image (admin key)')
    .option('--json', 'print the pool as JSON')
    .action(
      run(async (flags: { json?: boolean }) => {
        const state = await connect(load).pool.state();
        if (flags.json) return writeJson(state);
        if (state.images.length === 0) {
          writeLine('No warm pool on this node (set pool: { "<image>": N } in previewd.yaml).');
        } else {
          writeLine(
            table(
              ['IMAGE', 'WARM', 'TARGET', 'FILLING'],
              state.images.map((i) => [i.image, String(i.warm), String(i.target), String(i.filling)]),
            ),
          );
        }
        writeLine(
          `${state.claimed} sandbox(es) run on a claimed container; ${state.reservedMb} MB reserved.`,
        );
      }),
    );
}
