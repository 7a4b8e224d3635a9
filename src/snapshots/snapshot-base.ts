import type { Config } from '../config/schema.js';
import { PreviewdError } from '../domain/errors.js';
import type { CreateSandboxInput, RuntimePlan } from '../domain/schemas.js';
import { applyOverrides } from '../runtimes/plan.js';
import type { Store } from '../store/store.js';
import { LayerStore } from '../workspaces/layers.js';
import { pinLayers } from './layer-pins.js';

/** What a new sandbox starts from: a snapshot's layers (top first) and runtime plan. */
export interface SandboxBase {
  layers: string[];
  runtime: RuntimePlan;
  /** The snapshot it came from; none for a fork. */
  snapshotId?: string;
  /** Unpins the layers once the new sandbox's stack names them (layer-pins.ts). */
  release: () => void;
}

const notFound = (id: string) => new PreviewdError('snapshot_not_found', `snapshot ${id} does not exist`);

/**
 * Resolves `snapshot` of a create: the caller's own (another owner's answers snapshot_not_found,
 * as a missing one does), on this node (placement sends a create from a snapshot to its node),
 * its layers present and pinned until the stack is written. An admin acting for no owner
 * (`owner` undefined) may use any snapshot.
 */
export async function snapshotBase(
  deps: { store: Store; config: Pick<Config, 'dataDir'>; nodeId: string },
  snapshotId: string,
  owner: string | undefined,
): Promise<SandboxBase> {
  const first = await deps.store.getSnapshot(snapshotId);
  if (!first || (owner !== undefined && first.owner !== owner)) throw notFound(snapshotId);
  if (first.node !== deps.nodeId) {
    throw new PreviewdError(
      'snapshot_unavailable',
      `snapshot ${snapshotId} is kept on node ${first.node}, not on ${deps.nodeId}`,
      {
        hint: `Create it on node ${first.node} (placement.node), or leave placement out: previewd places it there.`,
      },
    );
  }
  // Pinned, then read again: a delete that removed the row before the pin also lets the layer go.
  const release = pinLayers(first.layers);
  try {
    const again = await deps.store.getSnapshot(snapshotId);
    if (!again) throw notFound(snapshotId);
    const layers = new LayerStore(deps.config.dataDir);
    const missing = again.layers.find((k) => !layers.has(k));
    if (missing) {
      throw new PreviewdError(
        'snapshot_unavailable',
        `layer ${missing} of snapshot ${snapshotId} is not on this node`,
      );
    }
    return { layers: again.layers, runtime: again.runtime, snapshotId, release };
  } catch (err) {
    release();
    throw err;
  }
}

/** The plan of a sandbox made from a base: its plan, the request's runtime and image on top. */
export function planFromBase(
  base: SandboxBase,
  input: CreateSandboxInput,
  config: Pick<Config, 'images'>,
): RuntimePlan {
  const plan = applyOverrides(base.runtime, input.runtime ?? {}, config.images);
  if (input.image !== undefined) plan.image = input.image;
  return plan;
}

/** A create names at most one starting point. */
export function checkBaseInput(input: CreateSandboxInput): void {
  if (input.snapshot !== undefined && input.template !== undefined) {
    throw new PreviewdError('invalid_request', 'template and snapshot cannot both be given', {
      hint: 'A snapshot already holds the files it was taken with: drop template.',
    });
  }
}
