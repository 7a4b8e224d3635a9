import { z } from 'zod';

/**
 * How strongly a sandbox is separated from the host. `container`: runc, the kernel's namespaces and
 * cgroups with previewd's defaults (no capabilities, no-new-privileges, its own uid). `gvisor`: the
 * same container run by gVisor's runsc, whose user-space kernel answers the sandbox's system calls,
 * so the host kernel sees only the few the sentry makes. See docs/isolation.md.
 */
export const isolationLevels = ['container', 'gvisor'] as const;
export type IsolationLevel = (typeof isolationLevels)[number];

export const isolationSchema = z
  .enum(isolationLevels)
  .describe(
    '"container": runc with previewd\'s defaults; "gvisor": gVisor\'s runsc, a user-space kernel between the sandbox and the host (when the engine has it)',
  );
