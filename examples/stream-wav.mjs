#!/usr/bin/env node
// Streams a WAV file through a pipeline over the WebSocket protocol (docs/protocol.md), paced in real time
// by default, and writes the processed audio to a WAV file. Events are printed as they come.
//
//   node examples/stream-wav.mjs ws://127.0.0.1:8081/v1/pipelines/<id>/stream in.wav out.wav [--fast] [--frame-ms 20]
//
// Set API_KEY to send `Authorization: Bearer …`. Uses the `ws` package (a dependency of this repo).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const usage = `usage: node examples/stream-wav.mjs <ws-url> <in.wav> <out.wav> [--fast] [--frame-ms 20]

Streams a 16-bit PCM WAV file through a stored pipeline and writes the processed audio as a WAV file.
  <ws-url>        ws://HOST:PORT/v1/pipelines/<id>/stream (the main port, or RT_PORT for uWebSockets.js)
  --fast          send without pacing, as fast as the socket takes it
  --frame-ms <n>  milliseconds of audio per message (default 20)
  --help, -h      this text
Environment: API_KEY sends "Authorization: Bearer <key>". Exit status: 0 after a clean close (1000), 1 on any
error (refused upgrade, an error answering start, a close with another code), 2 on bad arguments.`;

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      fast: { type: 'boolean' },
      'frame-ms': { type: 'string', default: '20' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  console.error(`${err.message}\n\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const [url, inPath, outPath] = positionals;
const frameMs = Number(values['frame-ms']);
if (!url || !inPath || !outPath || positionals.length !== 3 || !(frameMs > 0)) {
  console.error(usage);
  process.exit(2);
}

/** The fmt and data chunks of a 16-bit PCM WAV. */
function readWav(bytes) {
  let at = 12;
  let fmt;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString('ascii', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    if (id === 'fmt ')
      fmt = {
        channels: bytes.readUInt16LE(at + 10),
        sampleRate: bytes.readUInt32LE(at + 12),
        bits: bytes.readUInt16LE(at + 22),
      };
    if (id === 'data') return { ...fmt, pcm: bytes.subarray(at + 8, at + 8 + size) };
    at += 8 + size + (size & 1);
  }
  throw new Error('no data chunk');
}

function wavHeader(sampleRate, channels, dataBytes) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

const wav = readWav(readFileSync(inPath));
if (wav.bits !== 16) {
  console.error(`${inPath}: this example sends 16-bit PCM WAV files`);
  process.exit(2);
}
const frameBytes = Math.round((wav.sampleRate * frameMs) / 1000) * wav.channels * 2;
const headers = process.env.API_KEY ? { authorization: `Bearer ${process.env.API_KEY}` } : {};
const ws = new WebSocket(url, { headers });
const answers = [];
let output;

// The server refused the upgrade (401, 403, 404, 503…): show its problem+json body, which says why.
ws.on('unexpected-response', (_request, response) => {
  let body = '';
  response.setEncoding('utf8');
  response.on('data', (chunk) => {
    body += chunk;
  });
  response.on('end', () => {
    console.error(`upgrade refused: HTTP ${response.statusCode}${body ? ` ${body}` : ''}`);
    process.exit(1);
  });
});
ws.on('open', () => {
  ws.send(
    JSON.stringify({
      type: 'start',
      input: { encoding: 's16le', sample_rate: wav.sampleRate, channels: wav.channels },
    }),
  );
});
ws.on('message', (data, isBinary) => {
  if (isBinary) {
    answers.push(Buffer.from(data));
    return;
  }
  const msg = JSON.parse(data.toString());
  if (msg.type === 'ready') {
    output = msg.output;
    console.log(
      `ready: ${msg.input.sample_rate} Hz × ${msg.input.channels} → ${output.sample_rate} Hz × ${output.channels}, latency ${msg.latency_ms} ms`,
    );
    let at = 0;
    const sendNext = () => {
      if (at >= wav.pcm.length) {
        ws.send(JSON.stringify({ type: 'stop' }));
        return;
      }
      ws.send(wav.pcm.subarray(at, at + frameBytes));
      at += frameBytes;
      if (values.fast) setImmediate(sendNext);
      else setTimeout(sendNext, frameMs);
    };
    sendNext();
  } else if (msg.type === 'event') {
    console.log(
      `event ${msg.node}.${msg.name} at ${(msg.sample / wav.sampleRate).toFixed(3)} s ${JSON.stringify(msg.data)}`,
    );
  } else if (msg.type === 'stats') {
    console.log(
      `stats: ${msg.frames_in} frames in, ${msg.frames_out} out, ${msg.frames_dropped} dropped, latency p50 ${msg.latency.p50_ms} ms p99 ${msg.latency.p99_ms} ms`,
    );
  } else if (msg.type === 'error' && output === undefined) {
    // `start` was refused (e.g. RM_ERR_FORMAT_CONFLICT): the session never began, so there is nothing to wait for.
    console.error(`start refused: ${JSON.stringify(msg)}`);
    ws.close(1000);
    process.exitCode = 1;
  } else if (msg.type === 'error' || msg.type === 'dropped') {
    console.error(JSON.stringify(msg));
  }
});
ws.on('close', (code, reason) => {
  const pcm = Buffer.concat(answers);
  if (output)
    writeFileSync(outPath, Buffer.concat([wavHeader(output.sample_rate, output.channels, pcm.length), pcm]));
  if (output) console.log(`closed ${code} ${reason}; wrote ${pcm.length} bytes to ${outPath}`);
  else console.log(`closed ${code} ${reason}; nothing written`);
  process.exit(code === 1000 && output ? 0 : 1);
});
ws.on('error', (err) => {
  console.error(`websocket error: ${err.message}`);
  process.exit(1);
});
