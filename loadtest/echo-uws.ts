/**
 * Raw uWebSockets.js echo server: the baseline the product's RT_PORT listener is measured against.
 * Answers every message with the same bytes, as the product answers every frame with one message.
 * Listens on 127.0.0.1 only; prints `{"port":N}` on stdout once listening.
 *
 *   node --import tsx loadtest/echo-uws.ts [--port 0]
 */

import type { us_listen_socket } from 'uWebSockets.js';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

type Uws = typeof import('uWebSockets.js');
const require = createRequire(import.meta.url);
const uws: Uws = require('uWebSockets.js');

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

uws
  .App()
  .ws('/*', {
    // The same limits as the product's listener (src/realtime/transports/uws.ts) on its defaults, so
    // neither side pays for a setting the other does not.
    maxPayloadLength: 2 * 65536,
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  })
  .listen('127.0.0.1', Number(values.port), (token: us_listen_socket | false) => {
    if (!token) {
      process.stderr.write('echo-uws: could not listen\n');
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ port: uws.us_socket_local_port(token) })}\n`);
  });

process.on('SIGTERM', () => process.exit(0));
