/**
 * The echo reference of a call (docs/telephony/README.md, "Echo cancellation"): when the inbound pipeline has an
 * `aec` node, the audio the server plays to the caller is added to the caller's audio as one more input
 * channel, the node's `reference_channel`, so the node can remove its echo without the client doing anything.
 *
 * Both streams run in real time: playback sends one 20 ms chunk per 20 ms, the provider one media message per
 * 20 ms. The reference is a ring on the caller's sample clock: each inbound message reads the next samples
 * (`read`), each chunk sent to the provider is written at the write position (`write`). Silence is what
 * the reader finds where nothing was written, so "nothing plays" is a silent reference.
 *
 *        read (advances with caller audio)        write (advances with chunks sent)
 *              ▼                                          ▼
 *   ring: … ───┼──────── chunks sent, not yet read ───────┼──── silence … (capacity REFERENCE_MS)
 *
 * When playback starts after a pause, or after a stall that let the reader overtake the writer, the first
 * chunk is written LEAD_MS after the read position: the provider's inbound messages and our ticks have
 * independent phases, and a lead of one chunk keeps that jitter from cutting the reference. A real echo
 * path (network both ways, the provider's jitter buffer, the phone) is longer than that lead, so the
 * reference still arrives before its echo, and `aec`'s `tail_ms` covers the rest.
 */
import { bytesPerSample, silenceByte } from '../protocol.js';
import type { AudioFormat } from './wire.js';

/** Reference held ahead of the caller's audio, at most: past that the provider has stopped sending audio. */
export const REFERENCE_MS = 1000;
/** Where a new run of playback starts, after the read position (one playback chunk). */
export const LEAD_MS = 20;

/** Where the reference goes in the session's input: a channel count and the reference channel. */
export interface ReferenceLayout {
  channels: number;
  reference: number;
}

/**
 * The first `aec` node of a pipeline document, as a channel layout for a call with `callChannels` channels:
 * the reference at the node's `reference_channel` (1 unless set), the caller's channels in order in the
 * others, any channel left over silent. Undefined when the pipeline has no `aec` node.
 */
export function referenceLayout(definition: unknown, callChannels: number): ReferenceLayout | undefined {
  const nodes = (definition as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes)) return undefined;
  const aec = nodes.find(
    (n): n is { params?: { reference_channel?: unknown } } =>
      typeof n === 'object' && n !== null && (n as { type?: unknown }).type === 'aec',
  );
  if (aec === undefined) return undefined;
  const r = aec.params?.reference_channel;
  // The catalog validated the document: reference_channel is an integer 0..7 when present.
  const reference = typeof r === 'number' && Number.isInteger(r) && r >= 0 && r <= 7 ? r : 1;
  return { channels: Math.max(callChannels + 1, reference + 1), reference };
}

export class EchoReference {
  private readonly sampleBytes: number;
  private readonly silence: number;
  private readonly ring: Uint8Array;
  /** Ring length in samples. */
  private readonly capacity: number;
  private readonly lead: number;
  /** Positions in samples on the caller's clock; a position maps to ring index `pos % capacity`. */
  private readPos = 0;
  private writePos = 0;
  private anchored = false;
  private dropped = 0;

  constructor(
    /** The caller's format, as the provider sends it. */
    private readonly call: AudioFormat,
    private readonly layout: ReferenceLayout,
  ) {
    this.sampleBytes = bytesPerSample[call.encoding];
    this.silence = silenceByte[call.encoding];
    this.capacity = Math.round((call.sample_rate * REFERENCE_MS) / 1000);
    this.lead = Math.round((call.sample_rate * LEAD_MS) / 1000);
    this.ring = new Uint8Array(this.capacity * this.sampleBytes).fill(this.silence);
  }

  /** The session's input format: the caller's, with the reference channel added. */
  get input(): AudioFormat {
    return { ...this.call, channels: this.layout.channels };
  }

  /** Samples of playback dropped because the provider had stopped sending caller audio. */
  get droppedSamples(): number {
    return this.dropped;
  }

  /** One chunk of playback as sent to the provider (mono, the caller's encoding and rate). */
  write(chunk: Uint8Array): void {
    const n = Math.floor(chunk.byteLength / this.sampleBytes);
    if (!this.anchored || this.writePos < this.readPos) {
      this.writePos = this.readPos + this.lead;
      this.anchored = true;
    }
    if (this.writePos + n - this.readPos > this.capacity) {
      // The provider sends no caller audio (its stream stalled): this playback can have no echo to match.
      this.dropped += n;
      return;
    }
    // At most two spans: up to the end of the ring, then from its start.
    const b = this.sampleBytes;
    const start = this.writePos % this.capacity;
    const first = Math.min(n, this.capacity - start);
    this.ring.set(chunk.subarray(0, first * b), start * b);
    if (first < n) this.ring.set(chunk.subarray(first * b, n * b), 0);
    this.writePos += n;
  }

  /** One inbound message of caller audio → the same samples with the reference channel interleaved. */
  interleave(audio: Uint8Array): Uint8Array {
    const b = this.sampleBytes;
    const inChannels = this.call.channels;
    const { channels, reference } = this.layout;
    const frames = Math.floor(audio.byteLength / (b * inChannels));
    const out = new Uint8Array(frames * channels * b).fill(this.silence);
    const ring = this.ring;
    for (let f = 0; f < frames; f++) {
      const at = ((this.readPos + f) % this.capacity) * b;
      const row = f * channels * b;
      for (let k = 0; k < b; k++) {
        out[row + reference * b + k] = ring[at + k] ?? this.silence;
        // Read once: the slot is silence again for the next lap of the ring.
        ring[at + k] = this.silence;
      }
      for (let c = 0; c < inChannels; c++) {
        const to = row + (c < reference ? c : c + 1) * b;
        const from = (f * inChannels + c) * b;
        for (let k = 0; k < b; k++) out[to + k] = audio[from + k] ?? 0;
      }
    }
    this.readPos += frames;
    return out;
  }
}
