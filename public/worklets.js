/**
 * AudioWorklet processors of the browser client.
 *
 * `capture`: gathers the 128-sample render quanta of its (mono) input into frames of `frame_samples`
 * (20 ms at the context rate) and posts each frame's Float32Array to the main thread.
 *
 * `playback`: plays interleaved Float32 frames posted by the main thread through a ring buffer:
 *
 *   ┌──────────────┬───────── queued ─────────┬──────────────┐
 *   │    free      │ read ▶ … … … … … ▶ write │     free     │   capacity: 2 s of audio
 *   └──────────────┴──────────────────────────┴──────────────┘
 *   write overtakes read (client too slow): the oldest samples are overwritten;
 *   read catches up with write (network late): silence until `prebuffer` samples are queued again.
 */

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frameSamples = options.processorOptions.frame_samples;
    this.frame = new Float32Array(this.frameSamples);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    let at = 0;
    while (at < channel.length) {
      const n = Math.min(channel.length - at, this.frameSamples - this.filled);
      this.frame.set(channel.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === this.frameSamples) {
        // Transferred, so the next frame needs a buffer of its own.
        this.port.postMessage(this.frame, [this.frame.buffer]);
        this.frame = new Float32Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.channels = options.processorOptions.channels;
    this.capacity = Math.ceil(sampleRate * 2); // frames
    this.ring = new Float32Array(this.capacity * this.channels);
    this.read = 0; // frames, monotonic
    this.write = 0;
    // 60 ms of jitter buffer before playing (again).
    this.prebuffer = Math.ceil(sampleRate * 0.06);
    this.playing = false;
    this.port.onmessage = (e) => this.push(e.data);
  }

  push(samples) {
    const frames = samples.length / this.channels;
    for (let f = 0; f < frames; f++) {
      const base = ((this.write + f) % this.capacity) * this.channels;
      for (let c = 0; c < this.channels; c++) this.ring[base + c] = samples[f * this.channels + c];
    }
    this.write += frames;
    if (this.write - this.read > this.capacity) this.read = this.write - this.capacity;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const frames = out[0].length;
    const queued = this.write - this.read;
    if (!this.playing && queued >= this.prebuffer) this.playing = true;
    if (!this.playing) return true;
    const n = Math.min(frames, queued);
    for (let f = 0; f < n; f++) {
      const base = ((this.read + f) % this.capacity) * this.channels;
      for (let c = 0; c < out.length; c++) out[c][f] = this.ring[base + Math.min(c, this.channels - 1)];
    }
    this.read += n;
    if (n < frames) this.playing = false; // underrun: the rest of the quantum stays silent
    return true;
  }
}

registerProcessor('capture', CaptureProcessor);
registerProcessor('playback', PlaybackProcessor);
