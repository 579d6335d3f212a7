/**
 * The only importer of `native/`: a typed facade over the napi-rs addon, its buffer contracts and the
 * mapping of native errors to catalog codes.
 */
import { createRequire } from 'node:module';
import { fromNative } from './errors.js';

/** The generated binding (native/binding/index.d.ts). */
type Binding = typeof import('../native/binding/index.js');

const require = createRequire(import.meta.url);
const binding: Binding = require('../native/binding/index.js');

/** Which artifact the loader picked: always `'native'` here (no WASI build is shipped). */
export const bindingTarget = binding.__napiBindingTarget;

/**
 * Interleaved s16le PCM to f32 in [-1, 1). Throws RM_ERR_BAD_AUDIO on an odd byte count.
 */
export function s16leToF32(pcm: Buffer): Float32Array {
  try {
    return binding.s16leToF32(pcm);
  } catch (err) {
    throw fromNative(err);
  }
}
