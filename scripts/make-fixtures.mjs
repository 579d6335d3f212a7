#!/usr/bin/env node
/**
 * Regenerates the test recordings in test/fixtures/audio/ (see the README there).
 *
 *   node scripts/make-fixtures.mjs            write every recording
 *   node scripts/make-fixtures.mjs --check    regenerate into memory and compare with the committed files
 *
 * Noise, tones and DTMF are synthesized here from fixed seeds and formulas. Speech comes from espeak-ng
 * (`apt-get install espeak-ng`; needed only to regenerate, never by the tests), rendered at its native
 * 22,050 Hz and converted here with a windowed-sinc resampler, so no other audio tool is involved.
 * Everything is deterministic for a given espeak-ng version (the one used is recorded in the README).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const outDir = fileURLToPath(new URL('../test/fixtures/audio/', import.meta.url));

// ---------------------------------------------------------------------------------------------
// WAV in and out (16-bit PCM, the canonical 44-byte header)

/** Interleaves `planes` (arrays of floats in [-1, 1]) into a 16-bit PCM WAV file. */
function wavBytes(planes, sampleRate) {
  const channels = planes.length;
  const frames = planes[0].length;
  const data = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++) {
      const v = Math.max(-1, Math.min(1, planes[c][i]));
      data.writeInt16LE(Math.round(v * 32767), (i * channels + c) * 2);
    }
  }
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'ascii');
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVE', 8, 'ascii');
  head.write('fmt ', 12, 'ascii');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(channels, 22);
  head.writeUInt32LE(sampleRate, 24);
  head.writeUInt32LE(sampleRate * channels * 2, 28);
  head.writeUInt16LE(channels * 2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36, 'ascii');
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

/** Reads a mono 16-bit PCM WAV (as espeak-ng writes it): samples as floats, and the rate. */
function readMonoWav(bytes) {
  if (bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let at = 12;
  let rate = 0;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString('ascii', at, at + 4);
    let size = bytes.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      if (bytes.readUInt16LE(body + 2) !== 1 || bytes.readUInt16LE(body + 14) !== 16) {
        throw new Error('expected mono 16-bit PCM');
      }
      rate = bytes.readUInt32LE(body + 4);
    } else if (id === 'data') {
      // espeak-ng writing to a pipe leaves the size unset; take what is there.
      if (size === 0 || size === 0xffffffff || body + size > bytes.length) size = bytes.length - body;
      const out = new Float64Array(size >> 1);
      for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(body + 2 * i) / 32768;
      return { samples: out, rate };
    }
    at = body + size + (size & 1);
  }
  throw new Error('no data chunk');
}

// ---------------------------------------------------------------------------------------------
// Signal helpers

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rms = (x) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
const dbToAmp = (db) => 10 ** (db / 20);

/** Scales `x` in place so that its RMS is `dbfs`. */
function scaleToRms(x, dbfs) {
  const k = dbToAmp(dbfs) / rms(x);
  for (let i = 0; i < x.length; i++) x[i] *= k;
  return x;
}

/**
 * Band-limited rate conversion: each output sample is the input convolved with a Blackman-windowed
 * sinc centred on its position, cut off at 0.95 × the lower Nyquist frequency, 48 zero crossings wide.
 */
function resample(x, fromRate, toRate) {
  const ratio = toRate / fromRate;
  const cutoff = 0.95 * Math.min(1, ratio); // in cycles per input sample × 2
  const half = Math.ceil(24 / cutoff);
  const out = new Float64Array(Math.floor(x.length * ratio));
  for (let n = 0; n < out.length; n++) {
    const t = n / ratio;
    const centre = Math.floor(t);
    let acc = 0;
    for (let k = centre - half + 1; k <= centre + half; k++) {
      if (k < 0 || k >= x.length) continue;
      const d = t - k;
      const w = 0.42 + 0.5 * Math.cos((Math.PI * d) / half) + 0.08 * Math.cos((2 * Math.PI * d) / half);
      const arg = Math.PI * cutoff * d;
      acc += x[k] * cutoff * (arg === 0 ? 1 : Math.sin(arg) / arg) * w;
    }
    out[n] = acc;
  }
  return out;
}

/** Trims leading and trailing samples quieter than -60 dBFS, keeping `padMs` of silence on each side. */
function trim(x, rate, padMs) {
  const floor = dbToAmp(-60);
  let a = 0;
  while (a < x.length && Math.abs(x[a]) < floor) a++;
  let b = x.length;
  while (b > a && Math.abs(x[b - 1]) < floor) b--;
  const pad = Math.round((rate * padMs) / 1000);
  const out = new Float64Array(b - a + 2 * pad);
  out.set(x.subarray(a, b), pad);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The recordings

/** espeak-ng speaking `text` (US English voice, default pitch and speed) at 22,050 Hz. */
function espeak(text) {
  const dir = mkdtempSync(join(tmpdir(), 'rm-fixtures-'));
  try {
    const file = join(dir, 'speech.wav');
    execFileSync('espeak-ng', ['-v', 'en-us', '-s', '150', '-p', '50', '-a', '100', '-w', file, text]);
    return readMonoWav(readFileSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Phrases spoken one after another at `rate`: each trimmed of its own silence, `pauseMs` of silence between
 * two, 100 ms before the first and after the last, levelled together to `dbfs` RMS.
 */
function speech(phrases, rate, dbfs, pauseMs = 0) {
  const parts = [silence(rate, 100)];
  phrases.forEach((text, i) => {
    const { samples, rate: from } = espeak(text);
    if (i > 0) parts.push(silence(rate, pauseMs));
    parts.push(trim(resample(samples, from, rate), rate, 0));
  });
  parts.push(silence(rate, 100));
  return scaleToRms(concat(parts), dbfs);
}

/** A biquad low- or high-pass (RBJ cookbook, Butterworth Q) run over `x`. */
function pass(x, kind, freq, rate) {
  const w0 = (2 * Math.PI * freq) / rate;
  const alpha = Math.sin(w0) / (2 * Math.SQRT1_2);
  const cos = Math.cos(w0);
  const b =
    kind === 'high' ? [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2] : [(1 - cos) / 2, 1 - cos, (1 - cos) / 2];
  const [a0, a1, a2] = [1 + alpha, -2 * cos, 1 - alpha];
  const y = new Float64Array(x.length);
  let [x1, x2, y1, y2] = [0, 0, 0, 0];
  for (let i = 0; i < x.length; i++) {
    y[i] = (b[0] * x[i] + b[1] * x1 + b[2] * x2 - a1 * y1 - a2 * y2) / a0;
    [x2, x1, y2, y1] = [x1, x[i], y1, y[i]];
  }
  return y;
}

/** The noise's band edges: two biquads at 80 Hz (high-pass) and two at 2 kHz (low-pass). */
const NOISE_BAND = [
  ['high', 80],
  ['high', 80],
  ['low', 2000],
  ['low', 2000],
];

/**
 * Pink noise (Paul Kellet's economy filter over seeded Gaussian white noise) kept to 80 Hz–2 kHz
 * (two biquads at each edge), levelled to `dbfs` RMS. The band puts the energy where voices have
 * theirs: steady noise that the WebRTC VAD alone takes for speech, which is what the `vad` node's
 * level gate must catch (see native/dsp/src/nodes/vad.rs).
 */
function pinkNoise(rate, seconds, dbfs, seed) {
  const next = prng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  let out = new Float64Array(Math.round(rate * seconds));
  let [b0, b1, b2] = [0, 0, 0];
  for (let i = 0; i < out.length; i++) {
    const w = gauss();
    b0 = 0.99765 * b0 + w * 0.099046;
    b1 = 0.963 * b1 + w * 0.2965164;
    b2 = 0.57 * b2 + w * 1.0526913;
    out[i] = b0 + b1 + b2 + w * 0.1848;
  }
  for (const [kind, freq] of NOISE_BAND) out = pass(out, kind, freq, rate);
  return scaleToRms(out, dbfs);
}

/** The sum of sines at `freqs` Hz with peak `peakDbfs`, `ms` long, 5 ms raised-cosine fades at both ends. */
function tone(freqs, rate, ms, peakDbfs) {
  const n = Math.round((rate * ms) / 1000);
  const fade = Math.round(rate * 0.005);
  const amp = dbToAmp(peakDbfs) / freqs.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ramp = Math.min(1, i / fade, (n - 1 - i) / fade);
    const g = 0.5 - 0.5 * Math.cos(Math.PI * Math.max(0, ramp));
    let v = 0;
    for (const f of freqs) v += Math.sin((2 * Math.PI * f * i) / rate);
    out[i] = amp * g * v;
  }
  return out;
}

const silence = (rate, ms) => new Float64Array(Math.round((rate * ms) / 1000));

function concat(parts) {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** DTMF digits 1, 5, 9: 120 ms tones (row + column sines, -3 dBFS peak), 100 ms gaps, 8 kHz. */
function dtmf159() {
  const rate = 8000;
  const keys = { 1: [697, 1209], 5: [770, 1336], 9: [852, 1477] };
  const parts = [silence(rate, 50)];
  for (const k of ['1', '5', '9']) parts.push(tone(keys[k], rate, 120, -3), silence(rate, 100));
  return concat(parts);
}

const SENTENCE = 'The quick brown fox jumps over the lazy dog, and then it runs away into the woods.';

const recordings = {
  'speech-48k-mono.wav': () => [[speech(['Front center.', 'Front left.'], 48000, -22, 700)], 48000],
  'speech-16k-mono.wav': () => [[speech([SENTENCE], 16000, -20)], 16000],
  'noise-48k-mono.wav': () => [[pinkNoise(48000, 1.4, -30, 20261129)], 48000],
  'dtmf-8k-159.wav': () => [[dtmf159()], 8000],
  'tones-48k-stereo.wav': () => [[tone([440], 48000, 1000, -6), tone([1000], 48000, 1000, -6)], 48000],
};

const check = process.argv.includes('--check');
let stale = 0;
for (const [name, make] of Object.entries(recordings)) {
  const [planes, rate] = make();
  const bytes = wavBytes(planes, rate);
  const path = join(outDir, name);
  if (check) {
    let same = false;
    try {
      same = readFileSync(path).equals(bytes);
    } catch {}
    console.log(`${same ? 'same ' : 'DIFFERS'} ${name}`);
    if (!same) stale++;
  } else {
    writeFileSync(path, bytes);
    const seconds = (planes[0].length / rate).toFixed(2);
    const level = (20 * Math.log10(rms(planes.flatMap((p) => [...p])))).toFixed(1);
    console.log(
      `wrote ${name}: ${rate} Hz, ${planes.length} ch, ${seconds} s, ${level} dBFS RMS, ${bytes.length} bytes`,
    );
  }
}
process.exit(stale === 0 ? 0 : 1);
