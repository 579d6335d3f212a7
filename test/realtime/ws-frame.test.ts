import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { binaryFrame } from '../../src/realtime/transports/fastify.js';

// ws's own frame parser, as a client uses it on what a server sends: the reference the frames are held to.
type WsReceiver = Writable & { on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void };
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => WsReceiver;
};

function parsed(frames: Buffer[]): Promise<Array<{ data: Buffer; isBinary: boolean }>> {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  const got: Array<{ data: Buffer; isBinary: boolean }> = [];
  receiver.on('message', (data, isBinary) => got.push({ data: Buffer.from(data), isBinary }));
  return new Promise((resolve, reject) => {
    receiver.on('error', reject);
    for (const f of frames) receiver.write(f);
    receiver.end(() => resolve(got));
  });
}

describe('binary frames written by the main port', () => {
  // Each length class of RFC 6455 §5.2: 7-bit, 16-bit (126) and 64-bit (127) payload lengths, at their edges.
  const sizes = [0, 1, 125, 126, 3840, 65_535, 65_536, 200_000];

  it('has the header RFC 6455 prescribes for each payload length', () => {
    expect([...binaryFrame(new Uint8Array(125)).subarray(0, 2)]).toEqual([0x82, 125]);
    expect([...binaryFrame(new Uint8Array(126)).subarray(0, 4)]).toEqual([0x82, 126, 0, 126]);
    expect([...binaryFrame(new Uint8Array(65_535)).subarray(0, 4)]).toEqual([0x82, 126, 0xff, 0xff]);
    expect([...binaryFrame(new Uint8Array(65_536)).subarray(0, 10)]).toEqual([
      0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0,
    ]);
    for (const n of sizes)
      expect(binaryFrame(new Uint8Array(n)).length).toBe(n + (n < 126 ? 2 : n < 65_536 ? 4 : 10));
  });

  it('parses, with ws as a client parses it, to the same bytes as binary messages', async () => {
    const payloads = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff));
    const got = await parsed(payloads.map(binaryFrame));
    expect(got.map((m) => m.isBinary)).toEqual(sizes.map(() => true));
    expect(got.map((m, i) => Buffer.compare(m.data, Buffer.from(payloads[i] as Uint8Array)))).toEqual(
      sizes.map(() => 0),
    );
  });

  it('copies the payload: the lent memory may change after the call', () => {
    const lent = Uint8Array.of(1, 2, 3);
    const frame = binaryFrame(lent);
    lent.fill(9);
    expect([...frame]).toEqual([0x82, 3, 1, 2, 3]);
  });
});
