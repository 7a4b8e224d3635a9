import type { ClusterNode } from '@previewd/sdk';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/load.js';
import { connect } from '../connection.js';
import { ago, colour, run, table, writeJson, writeLine } from '../output.js';

function nodeTable(nodes: ClusterNode[]): string {
  return table(
    ['NODE', 'STATUS', 'EPOCH', 'RUNNING', 'MEMORY', 'LABELS', 'HEARTBEAT', 'API'],
    nodes.map((n) => [
      n.self ? colour.bold(`${n.id} *`) : n.id,
      n.live ? colour.green('live') : n.status === 'down' ? colour.red('down') : colour.yellow('lease ended'),
      String(n.epoch),
      n.capacity.maxRunning > 0 ? `${n.usage.running}/${n.capacity.maxRunning}` : String(n.usage.running),
      `${n.usage.memoryMb}/${n.capacity.memoryMb} MB`,
      Object.entries(n.labels)
        .filter(([k]) => !k.startsWith('swarm.node-id'))
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '-',
      ago(n.heartbeatAt),
      n.apiUrl,
    ]),
  );
}

/** `nodes`: the cluster's nodes as placement sees them (an admin key). */
export function registerNodesCommands(program: Command, load: () => LoadedConfig): void {
  program
    .command('nodes')
    .description("List the cluster's nodes: lease, labels, running sandboxes and memory (admin key)")
    .option('--json', 'print the nodes as JSON')
    .action(
      run(async (flags: { json?: boolean }) => {
        const list = await connect(load).nodes.list();
        if (flags.json) return writeJson(list);
        if (!list.cluster) {
          writeLine(
            `Not a cluster: this server is node ${list.self} (set PREVIEWD_CLUSTER=true with PREVIEWD_DATABASE_URL to run several).`,
          );
          return;
        }
        writeLine(nodeTable(list.nodes));
      }),
    );
}
