import Docker from 'dockerode';
import type { Config } from '../../config/schema.js';

/** A dockerode client for the local socket, PREVIEWD_DOCKER_SOCKET, or DOCKER_HOST. */
export function createDockerClient(config: Pick<Config, 'docker'>): Docker {
  if (config.docker.socketPath) return new Docker({ socketPath: config.docker.socketPath });
  // dockerode reads DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) itself when given no options.
  return new Docker();
}
