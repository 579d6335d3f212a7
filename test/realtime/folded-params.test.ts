/**
 * Live params survive optimization (docs/protocol.md §5, issue 11): a `params` message to a gain that constant
 * folding merged into its neighbour changes that gain's own share, on both transports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startTestServer, storePipeline } from '../support/server.js';
import { TestClient } from '../support/ws-client.js';

let server: Running;
let id: string;
beforeAll(async () => {
  server = await startTestServer();
  id = await storePipeline(server.app, {
    name: 'two gains',
    nodes: [
      { id: 'a', type: 'gain', params: { db: -3 } },
      { id: 'b', type: 'gain', params: { db: -6 } },
    ],
  });
});
afterAll(async () => {
  await server.close();
});

const level = (answer: Buffer) => 20 * Math.log10(answer.readInt16LE(answer.length - 2) / 16000);

describe.each(['ws', 'uws'] as const)('over %s', (transport) => {
  it('a params message to a folded gain sets that gain, not the merged stage', async () => {
    const plan = server.app.inject({ url: `/v1/pipelines/${id}/plan?sample_rate=8000&channels=1` });
    expect((await plan).json().nodes[0]).toMatchObject({ folded: ['a', 'b'], folded_db: [-3, -6] });
    const c = await TestClient.connect(`${server.base[transport]}/v1/pipelines/${id}/stream`);
    c.send({ type: 'start', input: { encoding: 's16le', sample_rate: 8000, channels: 1 } });
    await c.next('ready');
    const frame = Buffer.alloc(2 * 2000);
    for (let i = 0; i < frame.length; i += 2) frame.writeInt16LE(16000, i);
    c.sendRaw(frame, true);
    c.send({ type: 'params', node: 'b', params: { db: 0 } });
    await c.next('params_applied');
    c.sendRaw(frame, true);
    c.send({ type: 'params', node: 'a', params: { db: 1 } });
    await c.until((x) => x.texts().filter((t) => t.type === 'params_applied').length === 2);
    c.sendRaw(frame, true);
    c.send({ type: 'stop' });
    expect(await c.closed).toBe(1000);
    const answers = c.binaries();
    expect(level(answers[0] as Buffer)).toBeCloseTo(-9, 1);
    expect(level(answers[1] as Buffer)).toBeCloseTo(-3, 1); // b at 0 dB, a still -3 dB
    expect(level(answers[2] as Buffer)).toBeCloseTo(1, 1); // a at +1 dB, b at 0 dB
  });
});
