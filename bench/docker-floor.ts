/**
 * The floor the benches compare previewd against: `docker run -d` with the options a sandbox gets
 * (an init, a non-root user, the sandbox network, memory/CPU/pids limits, no capabilities,
 * no-new-privileges, a read-only root and a tmpfs /tmp — docs/runtimes.md), before the image.
 */
export function sandboxLikeRunArgs(name: string, network: string): string[] {
  return [
    'run',
    '-d',
    '--init',
    '--name',
    name,
    '--user',
    '1000:1000',
    '--network',
    network,
    '--memory',
    '1024m',
    '--cpus',
    '1',
    '--pids-limit',
    '512',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges:true',
    '--read-only',
    '--tmpfs',
    '/tmp:rw,nosuid,nodev,size=256m,mode=1777',
  ];
}
