import { readFileSync } from 'node:fs';
import { sharedAudioDir } from './audio.js';

/** The bytes of a shared recording, header included. */
export function sharedWavBytes(name: string): Buffer {
  return readFileSync(sharedAudioDir + name);
}
