import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AccessLog } from './access-log.js';
import type { ActivityTracker } from './activity.js';
import type { FrontPublisher } from './edge-front-publisher.js';
import type { EdgeMetrics } from './edge-metrics.js';
import type { PreviewAccess } from './preview-access.js';
import type { UpstreamProxy } from './proxy.js';
import type { RouteTable } from './route-table.js';
import type { SandboxDirectory } from './sandbox-directory.js';
import type { Waker } from './wake.js';

/** The pieces of one edge its request paths share (built once by the Edge). */
export interface EdgeParts {
  config: Config;
  log: Logger;
  directory: SandboxDirectory;
  routes: RouteTable;
  proxy: UpstreamProxy;
  waker: Waker;
  metrics: EdgeMetrics;
  accessLog: AccessLog;
  activity: ActivityTracker;
  access: PreviewAccess;
  front: FrontPublisher;
  /** How a port is probed (an HTTP request on published loopback ports, else a TCP connect). */
  probeOpts: { http: boolean };
}
