/** Small measurements on decoded audio for end-to-end tests: level, spectral peak, alignment. */

/** One channel of interleaved s16le PCM, as floats in [-1, 1). */
export function channelOf(pcm: Buffer, channels: number, channel = 0): Float64Array {
  const frames = Math.floor(pcm.length / (2 * channels));
  const out = new Float64Array(frames);
  for (let i = 0; i < frames; i++) out[i] = pcm.readInt16LE((i * channels + channel) * 2) / 32768;
  return out;
}

/** Root mean square level in dB relative to full scale (a full-scale square wave = 0 dB). */
export function rmsDb(x: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += (x[i] as number) ** 2;
  return 10 * Math.log10(sum / Math.max(1, x.length) + 1e-30);
}

/** Power of `x` at `hz` (Goertzel: one bin of a naive DFT), as the mean square of that component. */
export function powerAt(x: ArrayLike<number>, sampleRate: number, hz: number): number {
  const coeff = 2 * Math.cos((2 * Math.PI * hz) / sampleRate);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s = (x[i] as number) + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / (x.length * x.length);
}

/** The frequency of the strongest component between `fromHz` and `toHz`, scanned in `stepHz` steps. */
export function peakFrequency(
  x: ArrayLike<number>,
  sampleRate: number,
  fromHz = 50,
  toHz = 8000,
  stepHz = 10,
): number {
  let best = fromHz;
  let bestPower = -1;
  for (let hz = fromHz; hz <= toHz; hz += stepHz) {
    const p = powerAt(x, sampleRate, hz);
    if (p > bestPower) {
      bestPower = p;
      best = hz;
    }
  }
  return best;
}

/**
 * The delay of `x` against `reference` (0..maxLag samples) at which they correlate best, and that normalised
 * correlation (1 = same shape), over `reference` from `from` for `length` samples.
 */
export function alignment(
  reference: ArrayLike<number>,
  x: ArrayLike<number>,
  maxLag: number,
  from = 0,
  length = reference.length - from,
): { lag: number; correlation: number } {
  let best = { lag: 0, correlation: -1 };
  for (let lag = 0; lag <= maxLag; lag++) {
    let xy = 0;
    let xx = 0;
    let yy = 0;
    for (let i = from; i < from + length && i + lag < x.length; i++) {
      const a = reference[i] as number;
      const b = x[i + lag] as number;
      xy += a * b;
      xx += a * a;
      yy += b * b;
    }
    const correlation = xy / Math.sqrt(xx * yy + 1e-30);
    if (correlation > best.correlation) best = { lag, correlation };
  }
  return best;
}
