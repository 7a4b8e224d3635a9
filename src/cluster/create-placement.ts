import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PreviewdError } from '../domain/errors.js';
import type { NodeRecord } from '../domain/node.js';
import type { PlacementInput } from '../domain/schemas.js';
import type { Store } from '../store/store.js';
import type { ApiForwarding, ForwardedAnswer } from './api-forwarding.js';
import { PLACED_HEADER } from './node-credential.js';
import { matches, place } from './placement.js';

export interface CreatePlacementDeps {
  self: string;
  store: Store;
  forwarding?: ApiForwarding;
  /** This node's labels (outside a cluster: cluster.labels of the configuration). */
  labels: () => Record<string, string>;
  /** What a sandbox about to start counts as (admission.startMemoryMb). */
  startMemoryMb: number;
  retryAfterSec: number;
  log: Logger;
  nowMs?: () => number;
}

/** Whether an error answer from a node means "try the next one". */
function spills(status: number, body: unknown): boolean {
  const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
  return (
    status === 503 && (code === 'capacity_exhausted' || code === 'node_fenced' || code === 'node_unavailable')
  );
}

/**
 * Decides where a create runs. Outside a cluster: here, if the placement allows it at all. In a
 * cluster: the live nodes that match, with room first (src/cluster/placement.ts); the create is
 * sent to the first, and spills to the next when that one answers capacity_exhausted (or does not
 * answer); capacity_exhausted only when every matching node did.
 */
export class CreatePlacement {
  /** Creates this node sent out since the nodes' last heartbeats (their usage does not show them yet). */
  private readonly recent = new Map<string, number[]>();

  constructor(private readonly deps: CreatePlacementDeps) {}

  /** The nodes' figures plus the creates placed on each after its last heartbeat. */
  private withRecent(nodes: NodeRecord[]): NodeRecord[] {
    return nodes.map((node) => {
      const since = Date.parse(node.heartbeatAt);
      const placed = (this.recent.get(node.id) ?? []).filter((at) => at > since);
      this.recent.set(node.id, placed);
      if (placed.length === 0) return node;
      return {
        ...node,
        usage: {
          running: node.usage.running + placed.length,
          memoryMb: node.usage.memoryMb + placed.length * this.deps.startMemoryMb,
        },
      };
    });
  }

  private placed(node: string): void {
    const list = this.recent.get(node) ?? [];
    list.push((this.deps.nowMs ?? Date.now)());
    this.recent.set(node, list.slice(-1000));
  }

  /** This node's id (a create whose body is an archive runs where it was received: docs/sources.md). */
  get self(): string {
    return this.deps.self;
  }

  /** A create another node placed here (its rate limit was counted there). */
  forwardedHere(request: FastifyRequest): boolean {
    return this.deps.forwarding?.placedHere(request.headers) ?? false;
  }

  async create(
    request: FastifyRequest,
    reply: FastifyReply,
    placement: PlacementInput | undefined,
    local: () => Promise<unknown>,
  ): Promise<unknown> {
    const { forwarding, self } = this.deps;
    if (!forwarding) {
      const here = { id: self, labels: this.deps.labels() } as NodeRecord;
      if (!matches(here, { ...placement, memoryMb: 0 })) throw unsatisfiable(placement);
      return local();
    }
    // Placed here by another node: this node creates it, or says it is full.
    if (forwarding.isForwarded(request.headers)) {
      if (request.headers[PLACED_HEADER] !== self) {
        throw new PreviewdError('invalid_request', 'a forwarded create names another node');
      }
      return local();
    }
    const nodes = this.withRecent(await this.deps.store.listNodes());
    const {
      candidates,
      full,
      unsatisfiable: none,
    } = place(nodes, { ...placement, memoryMb: this.deps.startMemoryMb }, (this.deps.nowMs ?? Date.now)());
    if (none) throw unsatisfiable(placement);
    const tried: string[] = [];
    for (const node of [...candidates, ...full]) {
      tried.push(node.id);
      if (node.id === self) {
        try {
          const done = await local();
          this.placed(node.id);
          return done;
        } catch (err) {
          if (err instanceof PreviewdError && err.code === 'capacity_exhausted') continue;
          throw err;
        }
      }
      let answer: ForwardedAnswer;
      try {
        answer = await forwarding.send(request, node, {
          body: JSON.stringify(request.body),
          extraHeaders: { [PLACED_HEADER]: node.id },
        });
      } catch (err) {
        if (err instanceof PreviewdError && err.code === 'node_unavailable') continue;
        throw err;
      }
      const text = await readBounded(answer.body, 1024 * 1024);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (spills(answer.status, parsed)) {
        this.deps.log.info({ node: node.id, status: answer.status }, 'create spilled to the next node');
        continue;
      }
      this.placed(node.id);
      forwarding.apply(reply, answer);
      return reply.send(text);
    }
    throw new PreviewdError(
      'capacity_exhausted',
      `every node that matches is full (tried ${tried.join(', ')})`,
      {
        headers: { 'Retry-After': String(this.deps.retryAfterSec) },
        details: { retryAfterSec: this.deps.retryAfterSec, tried },
      },
    );
  }
}

function unsatisfiable(placement: PlacementInput | undefined): PreviewdError {
  return new PreviewdError('placement_unsatisfiable', 'no live node matches the placement', {
    details: { placement: placement ?? {} },
  });
}

async function readBounded(body: AsyncIterable<Buffer>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) throw new PreviewdError('node_unavailable', 'a node answered a create with too much');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
