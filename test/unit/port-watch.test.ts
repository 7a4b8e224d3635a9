import { describe, expect, it } from 'vitest';
import { parseListening } from '../../src/sandboxes/port-watch.js';

const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 100 0 0 10 0
   2: 0200A8C0:0BB8 0300A8C0:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 100 0 0 10 0
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:10E1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 4 1
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 5 1
`;

describe('parseListening', () => {
  it('finds LISTEN sockets of /proc/net/tcp and tcp6, marking loopback-only ones', () => {
    expect(parseListening(tcp)).toEqual([
      { port: 3000, loopback: false },
      { port: 4321, loopback: false },
      { port: 8080, loopback: true },
    ]);
  });
  it('ignores established connections and junk', () => {
    expect(parseListening('garbage\n\n   0: zz:zz 00:00 0A')).toEqual([]);
  });
});
