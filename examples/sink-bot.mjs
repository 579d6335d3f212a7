#!/usr/bin/env node
// A tiny telephony bot to use as a pipeline's `sink` (docs/telephony/README.md): it answers each caller
// utterance with a tone and stops talking when the caller interrupts it.
//
//   node examples/sink-bot.mjs [--port 9000] [--host 127.0.0.1] [--tone-hz 660] [--reply-ms 800]
//
// Give the pipeline a `vad` node (the bot answers on `speech_end`) and `sink.url: ws://HOST:PORT/` (the host
// must be in the server's SINK_ALLOWLIST); `sink.playback.barge_in: true` lets the caller cut it off.
// The reply is streamed in 100 ms pieces, as a text-to-speech engine would; on `interrupted` the rest of
// the reply is dropped, and `played` / `interrupted` say how much of it the caller heard.
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    host: { type: 'string', default: '127.0.0.1' },
    'tone-hz': { type: 'string', default: '660' },
    'reply-ms': { type: 'string', default: '800' },
  },
});
const RATE = 16000;
const PIECE_MS = 100;
const toneHz = Number(values['tone-hz']);
const replyMs = Number(values['reply-ms']);

/** `ms` of a sine at `hz`, 16-bit little-endian mono at RATE, with 10 ms fades so it does not click. */
function tone(ms, hz) {
  const n = Math.round((RATE * ms) / 1000);
  const fade = RATE / 100;
  const out = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    const gain = Math.min(1, i / fade, (n - 1 - i) / fade);
    out.writeInt16LE(Math.round(0.3 * 32767 * gain * Math.sin((2 * Math.PI * hz * i) / RATE)), i * 2);
  }
  return out;
}

const server = new WebSocketServer({ host: values.host, port: Number(values.port) }, () => {
  const { port } = server.address();
  console.log(`sink-bot listening on ws://${values.host}:${port}/`);
});

server.on('connection', (ws) => {
  let call = '?';
  let replies = 0;
  /** The reply being streamed: its remaining pieces, and the timer that sends them. */
  let speaking = null;

  const stopSpeaking = () => {
    if (speaking) clearInterval(speaking.timer);
    speaking = null;
  };

  const answer = () => {
    stopSpeaking();
    const name = `reply-${++replies}`;
    const audio = tone(replyMs, toneHz + 110 * (replies % 3));
    const pieceBytes = ((RATE * PIECE_MS) / 1000) * 2;
    let at = 0;
    speaking = {
      timer: setInterval(() => {
        if (at >= audio.length) {
          // All of it is with the server now: ask to be told when the caller has heard it.
          ws.send(JSON.stringify({ type: 'mark', name }));
          stopSpeaking();
          return;
        }
        ws.send(audio.subarray(at, at + pieceBytes), { binary: true });
        at += pieceBytes;
      }, PIECE_MS),
    };
  };

  ws.on('message', (data, isBinary) => {
    if (isBinary) return; // the caller's processed audio: a real bot would transcribe it
    const m = JSON.parse(data.toString());
    if (m.type === 'session') {
      call = `${m.provider} ${m.session_id}`;
      console.log(`${call}: call ${JSON.stringify(m.call)}`);
      ws.send(
        JSON.stringify({ type: 'playback', format: { encoding: 's16le', sample_rate: RATE, channels: 1 } }),
      );
    } else if (m.type === 'event' && m.name === 'speech_end') {
      answer();
    } else if (m.type === 'event' && m.name === 'digit') {
      console.log(`${call}: digit ${m.data.digit}`);
    } else if (m.type === 'played') {
      console.log(`${call}: ${m.name} heard in full (timeline at ${m.played_ms} ms)`);
    } else if (m.type === 'interrupted') {
      // Honour the interruption: whatever of this reply was not sent yet is never sent.
      stopSpeaking();
      console.log(`${call}: interrupted; the caller heard up to ${m.played_ms} ms`);
    } else if (m.type === 'error') {
      console.log(`${call}: error ${m.code}: ${m.message}`);
    }
  });
  ws.on('close', () => {
    stopSpeaking();
    console.log(`${call}: ended`);
  });
  ws.on('error', () => {});
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
