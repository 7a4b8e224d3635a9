import { Transform, type TransformCallback } from 'node:stream';
import type { OutputChunk } from '../provider.js';

/**
 * Parses the engine's multiplexed stream format (8-byte header: stream id, 3 zero bytes,
 * big-endian payload length) into OutputChunk objects.
 */
export class DemuxStream extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  constructor() {
    super({ readableObjectMode: true });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const kind = this.pending[0];
      const data = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      if (size > 0) this.push({ stream: kind === 2 ? 'stderr' : 'stdout', data } satisfies OutputChunk);
    }
    done();
  }
}
