import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseWav, type WavInfo } from '../../src/native.js';

/** The test recordings in the repo (`test/fixtures/audio/`; its README says how each was made). */
export const fixtureAudioDir = fileURLToPath(new URL('../fixtures/audio/', import.meta.url));

/** The bytes of a test recording, header included. */
export function fixtureWavBytes(name: string): Buffer {
  return readFileSync(fixtureAudioDir + name);
}

/** A test recording: its WAV header facts and its interleaved sample bytes. */
export function readFixtureWav(name: string): { info: WavInfo; pcm: Buffer } {
  const bytes = fixtureWavBytes(name);
  const info = parseWav(bytes);
  return { info, pcm: bytes.subarray(info.data_offset, info.data_offset + info.data_bytes) };
}

/** Splits `pcm` into messages of `ms` milliseconds (the last one shorter). */
export function chunk(pcm: Buffer, bytesPerFrame: number, sampleRate: number, ms: number): Buffer[] {
  const size = Math.max(1, Math.round((sampleRate * ms) / 1000)) * bytesPerFrame;
  const out: Buffer[] = [];
  for (let at = 0; at < pcm.length; at += size) out.push(pcm.subarray(at, Math.min(at + size, pcm.length)));
  return out;
}
