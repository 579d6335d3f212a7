/** The sink client of docs/telephony/README.md (src/realtime/sink.ts): allowlist, reconnects, bounded sending. */
import { describe, expect, it } from 'vitest';
import { defaultSinkOptions, SinkLink, type SinkState, sinkHostAllowed } from '../../src/realtime/sink.js';
import { TestSink, until } from '../support/telephony.js';

describe('sinkHostAllowed', () => {
  it.each([
    [['bot.example.com'], 'wss://bot.example.com/calls', true],
    [['BOT.example.com'], 'wss://bot.EXAMPLE.com/calls', true],
    [['bot.example.com'], 'wss://evil.example.com/calls', false],
    [['*.example.com'], 'wss://a.b.example.com/x', true],
    [['*.example.com'], 'wss://example.com/x', false],
    [['*.example.com'], 'wss://notexample.com/x', false],
    [['bot.example.com:8443'], 'wss://bot.example.com:8443/x', true],
    [['bot.example.com:8443'], 'wss://bot.example.com/x', false],
    [['127.0.0.1'], 'ws://127.0.0.1:9000/', true],
    [[], 'ws://127.0.0.1:9000/', false],
    [['127.0.0.1'], 'http://127.0.0.1/', false],
    [['127.0.0.1'], 'not a url', false],
  ])('%j allows %s: %s', (list, url, allowed) => {
    expect(sinkHostAllowed(list, url)).toBe(allowed);
  });
});

describe('SinkLink', () => {
  it('says hello on every connection and reconnects with backoff after the sink drops it', async () => {
    const sink = await TestSink.start();
    const states: SinkState[] = [];
    const link = new SinkLink(
      sink.url,
      { hello: () => '{"type":"session"}', text: () => {}, binary: () => {}, state: (s) => states.push(s) },
      { ...defaultSinkOptions, backoffMinMs: 20 },
    );
    try {
      await until(
        () => sink.connections.length === 1 && (sink.connections[0]?.texts.length ?? 0) === 1,
        5000,
        'hello',
      );
      sink.connections[0]?.ws.terminate();
      await until(
        () => sink.connections.length === 2 && (sink.connections[1]?.texts.length ?? 0) === 1,
        5000,
        'second hello',
      );
      expect(sink.connections[1]?.texts[0]).toEqual({ type: 'session' });
      expect(states).toEqual(['connecting', 'open', 'down', 'connecting', 'open']);
      expect(link.info()).toMatchObject({ state: 'open', connects: 2, reconnects: 1 });
    } finally {
      link.close();
      await sink.close();
    }
  });

  it('drops what a sink that does not read cannot take, instead of buffering without bound', async () => {
    const sink = await TestSink.start((c) => {
      // A stuck bot: the TCP socket stops reading.
      (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    });
    const link = new SinkLink(
      sink.url,
      { hello: () => '{"type":"session"}', text: () => {}, binary: () => {}, state: () => {} },
      { ...defaultSinkOptions, maxBufferedBytes: 256 * 1024 },
    );
    try {
      await until(() => link.state === 'open', 5000, 'open');
      const frame = new Uint8Array(64 * 1024);
      for (let i = 0; i < 400; i++) {
        link.sendBinary(frame);
        await new Promise((r) => setImmediate(r));
      }
      expect(link.info().dropped_messages).toBeGreaterThan(0);
    } finally {
      link.close();
      await sink.close();
    }
  });

  it('keeps retrying a sink that is not there, and stops when closed', async () => {
    const gone = await TestSink.start();
    const url = gone.url;
    await gone.close();
    const states: SinkState[] = [];
    const link = new SinkLink(
      url,
      { hello: () => '{}', text: () => {}, binary: () => {}, state: (s) => states.push(s) },
      { ...defaultSinkOptions, backoffMinMs: 10, backoffMaxMs: 40 },
    );
    await until(() => states.filter((s) => s === 'down').length >= 3, 5000, 'three failed attempts');
    link.close();
    const n = states.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(states.length).toBe(n);
    expect(link.info()).toMatchObject({ state: 'closed', connects: 0 });
    link.sendText('x');
    expect(link.info().dropped_messages).toBe(1);
  });
});
