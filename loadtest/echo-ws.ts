/**
 * Raw `ws` echo server: the baseline the product's `@fastify/websocket` path is measured against.
 * Answers every message with the same bytes, as the product answers every frame with one message.
 * Listens on 127.0.0.1 only; prints `{"port":N}` on stdout once listening.
 *
 *   node --import tsx loadtest/echo-ws.ts [--port 0]
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

// As @fastify/websocket configures ws in the product: no compression, payload limit only.
const server = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(values.port),
  perMessageDeflate: false,
  maxPayload: 2 * 65536,
});
server.on('connection', (ws) => {
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});
server.on('listening', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

process.on('SIGTERM', () => process.exit(0));
