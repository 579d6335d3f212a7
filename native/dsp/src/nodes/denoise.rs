//! `denoise`: RNNoise-class neural noise suppression (docs/pipelines.md), using nnnoiseless.
//!
//! The model works on 480-frame blocks (10 ms at 48 kHz, so the node needs 48 kHz input), one
//! independent state per channel. Input is gathered into blocks; each call emits every complete
//! block, so the frames per call vary with how the stream is cut but the stream does not.
//!
//! ```text
//!  input   |  b0  |  b1  |  b2  | b3…          blocks of 480 frames
//!  model        out0   out1   out2             out(k) = denoised b(k-1): windowed overlap-add
//!  output  |  0s  | b0'  | b1'  | …            the stream lags the input by exactly 480 frames
//! ```
//! RNNoise analyses 960-sample windows with a hop of 480 and synthesises by overlap-add, so the
//! block it can finish when block `k` arrives is block `k - 1`: the model's own delay is one
//! block. Filling a block before answering is that same block, not an extra one: a sample at
//! stream position `t` always comes out at output position `t + 480`, however the input is cut.
//! So [`NodeCore::latency_frames`] is 480 and `flush` completes the stream to `input + 480` frames.

use std::sync::OnceLock;

use nnnoiseless::{DenoiseState, RnnModel};
use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::Format;
use crate::node::{parse_params, BlockNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "denoise";
/// Frames per model block (10 ms at 48 kHz).
const BLOCK: usize = DenoiseState::FRAME_SIZE;
/// The only rate the model was trained for.
const RATE: u32 = 48_000;
/// The model expects samples on the 16-bit integer scale.
const I16_SCALE: f32 = 32_768.0;

/// Params of `denoise`: none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenoiseParams {}

/// The embedded weights, read once and shared by every state (reading borrows the static bytes,
/// so states built from it copy no weights).
fn model() -> &'static RnnModel {
    static MODEL: OnceLock<RnnModel> = OnceLock::new();
    MODEL.get_or_init(RnnModel::default)
}

fn fresh_state() -> Box<DenoiseState<'static>> {
    DenoiseState::with_model(model())
}

/// Makes the calling thread ready to denoise without allocating.
///
/// nnnoiseless keeps its FFT plans in thread-local caches, so the first block any thread
/// processes allocates them. [`Denoise::new`] calls this for the thread that builds the node; a
/// worker thread that runs nodes built elsewhere should call it once when it starts.
pub fn prepare_thread() {
    let mut state = fresh_state();
    // A non-silent block, so the whole path (features, pitch search, RNN, synthesis) runs.
    let input: [f32; BLOCK] = std::array::from_fn(|i| ((i * 7919 % 480) as f32 - 240.0) * 40.0);
    let mut output = [0.0; BLOCK];
    state.process_frame(&mut output, &input);
}

/// Suppresses noise on every channel of a 48 kHz stream.
pub struct Denoise {
    format: Format,
    /// One model state per channel, boxed (each is about 30 KB).
    states: Vec<Box<DenoiseState<'static>>>,
    /// The partial block gathered so far, per channel (`held` frames live).
    pending: AudioBuf,
    held: usize,
    /// One block on the model's ±32768 scale, in and out.
    scaled_in: Box<[f32; BLOCK]>,
    scaled_out: Box<[f32; BLOCK]>,
}

impl Denoise {
    /// Builds a denoiser for `input`, which must be 48 kHz.
    pub fn new(params: &Value, input: Format) -> Result<Denoise, NodeError> {
        let _: DenoiseParams = parse_params(TYPE, params)?;
        if input.sample_rate != RATE {
            return Err(NodeError::format(TYPE, format!("needs 48 kHz input, got {} Hz", input.sample_rate)));
        }
        prepare_thread();
        let mut pending = AudioBuf::new(input.channels, BLOCK);
        pending.set_shape(input.channels, BLOCK);
        Ok(Denoise {
            format: input,
            states: (0..input.channels).map(|_| fresh_state()).collect(),
            pending,
            held: 0,
            scaled_in: Box::new([0.0; BLOCK]),
            scaled_out: Box::new([0.0; BLOCK]),
        })
    }

    /// Runs the pending (full) block through every channel's model into `output` at `at`.
    fn run_block(&mut self, output: &mut AudioBuf, at: usize) {
        for (c, state) in self.states.iter_mut().enumerate() {
            for (s, &x) in self.scaled_in.iter_mut().zip(self.pending.channel(c)) {
                *s = x * I16_SCALE;
            }
            state.process_frame(&mut self.scaled_out[..], &self.scaled_in[..]);
            for (y, &s) in output.channel_mut(c)[at..at + BLOCK].iter_mut().zip(self.scaled_out.iter()) {
                *y = s / I16_SCALE;
            }
        }
        self.held = 0;
    }
}

impl NodeCore for Denoise {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn latency_frames(&self) -> usize {
        BLOCK
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        Err(NodeError::params(TYPE, format!("no param '{name}'")))
    }

    /// Forgets the stream. nnnoiseless has no in-place reset, so this builds new model states:
    /// a few small allocations per channel (the weights are shared, not copied).
    fn reset(&mut self) {
        for state in &mut self.states {
            *state = fresh_state();
        }
        self.held = 0;
    }
}

impl BlockNode for Denoise {
    /// Whole blocks only: `n` new frames plus at most 479 held complete at most `n/480 + 1`
    /// blocks; `flush` writes at most 959 frames, within `max_output_frames(0)`.
    fn max_output_frames(&self, input_frames: usize) -> usize {
        (input_frames / BLOCK + 2) * BLOCK
    }

    fn process(&mut self, input: &AudioBuf, output: &mut AudioBuf, _ctx: &mut Ctx<'_>) {
        let n = input.frames();
        let channels = self.format.channels;
        debug_assert_eq!(input.channels(), channels);
        // Callers size `output` by max_output_frames, so this never grows it in steady state.
        output.set_shape(channels, output.capacity_frames().max(self.max_output_frames(n)));
        let mut written = 0;
        let mut pos = 0;
        while pos < n {
            let take = (BLOCK - self.held).min(n - pos);
            for c in 0..channels {
                self.pending.channel_mut(c)[self.held..self.held + take].copy_from_slice(&input.channel(c)[pos..pos + take]);
            }
            self.held += take;
            pos += take;
            if self.held == BLOCK {
                self.run_block(output, written);
                written += BLOCK;
            }
        }
        output.set_frames(written);
    }

    fn flush(&mut self, output: &mut AudioBuf, _ctx: &mut Ctx<'_>) {
        let channels = self.format.channels;
        // The stream owes its last `held` frames plus the block of delay: `held + 480` frames.
        let owed = self.held + BLOCK;
        output.set_shape(channels, output.capacity_frames().max(2 * BLOCK));
        let mut written = 0;
        if self.held > 0 {
            for c in 0..channels {
                self.pending.channel_mut(c)[self.held..].fill(0.0);
            }
            self.run_block(output, written);
            written += BLOCK;
        }
        // One block of silence pushes the last real block out of the overlap-add.
        for c in 0..channels {
            self.pending.channel_mut(c).fill(0.0);
        }
        self.run_block(output, written);
        output.set_frames(owed);
        self.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{read_fixture_audio, rms_dbfs, stream_block};
    use serde_json::json;

    fn node(channels: usize) -> Denoise {
        Denoise::new(&json!({}), Format::new(48_000, channels).unwrap()).unwrap()
    }

    fn mono(name: &str) -> Vec<f32> {
        let (planes, rate) = read_fixture_audio(name);
        assert_eq!(rate, 48_000);
        planes.into_iter().next().unwrap()
    }

    /// Normalised cross-correlation of `a` and `b` at lag `lag` (b shifted later by `lag`).
    fn correlation(a: &[f32], b: &[f32], lag: usize) -> f64 {
        let n = a.len().min(b.len().saturating_sub(lag));
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        ab / (aa * bb).sqrt().max(1e-30)
    }

    #[test]
    fn noise_alone_drops_by_at_least_10_db() {
        let noise = mono("noise-48k-mono.wav");
        let y = stream_block(&mut node(1), std::slice::from_ref(&noise), 480);
        let (before, after) = (rms_dbfs(&noise), rms_dbfs(&y[0][BLOCK..]));
        eprintln!("denoise noise: {before:.1} dBFS in, {after:.1} dBFS out, drop {:.1} dB", before - after);
        assert!(before - after >= 10.0, "noise dropped by only {:.1} dB", before - after);
    }

    #[test]
    fn speech_in_noise_gets_closer_to_the_clean_speech() {
        let speech = mono("speech-48k-mono.wav");
        let noise = mono("noise-48k-mono.wav");
        // Mix at 0 dB SNR over the speech's length (the noise loops if shorter).
        let k = 10f64.powf((rms_dbfs(&speech) - rms_dbfs(&noise)) / 20.0) as f32;
        let noisy: Vec<f32> = speech.iter().enumerate().map(|(i, s)| s + k * noise[i % noise.len()]).collect();
        let y = stream_block(&mut node(1), std::slice::from_ref(&noisy), 960);
        let before = correlation(&speech, &noisy, 0);
        let after = correlation(&speech, &y[0], BLOCK);
        let snr = |out: &[f32]| {
            let (mut sig, mut err) = (0.0f64, 0.0f64);
            for (s, o) in speech.iter().zip(out) {
                sig += f64::from(*s).powi(2);
                err += f64::from(o - s).powi(2);
            }
            10.0 * (sig / err).log10()
        };
        let (snr_in, snr_out) = (snr(&noisy), snr(&y[0][BLOCK..]));
        eprintln!(
            "denoise speech+noise @0 dB: correlation with clean {before:.3} -> {after:.3}; SNR {snr_in:.1} -> {snr_out:.1} dB"
        );
        assert!(after > before, "correlation {before:.3} -> {after:.3}");
    }

    #[test]
    fn the_stream_lags_by_exactly_the_reported_latency() {
        // Clean speech passes nearly untouched, so its cross-correlation with the output peaks at
        // the model's delay.
        let speech = mono("speech-48k-mono.wav");
        let y = stream_block(&mut node(1), std::slice::from_ref(&speech), 480);
        let best = (0..2000).max_by(|&a, &b| correlation(&speech, &y[0], a).total_cmp(&correlation(&speech, &y[0], b))).unwrap();
        eprintln!("denoise: correlation peaks at lag {best} (corr {:.3}), latency_frames {}", correlation(&speech, &y[0], best), BLOCK);
        assert_eq!(best, node(1).latency_frames());
    }

    #[test]
    fn output_does_not_depend_on_how_the_stream_is_cut() {
        let noise = mono("noise-48k-mono.wav");
        let speech = mono("speech-48k-mono.wav");
        let planes = vec![speech[..noise.len().min(speech.len())].to_vec(), noise[..noise.len().min(speech.len())].to_vec()];
        let whole = stream_block(&mut node(2), &planes, 0);
        for chunk in [480, 960, 1776, 1, 7] {
            let cut = stream_block(&mut node(2), &planes, chunk);
            assert_eq!(cut, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn flushed_length_is_input_plus_latency() {
        for n in [0, 1, 479, 480, 481, 4800, 5000] {
            for chunk in [0, 1, 480, 1000] {
                let y = stream_block(&mut node(1), &[vec![0.01; n]], chunk);
                assert_eq!(y[0].len(), n + BLOCK, "n {n} chunk {chunk}");
            }
        }
    }

    #[test]
    fn channels_are_denoised_independently() {
        let noise = mono("noise-48k-mono.wav");
        let speech = mono("speech-48k-mono.wav")[..noise.len()].to_vec();
        let both = stream_block(&mut node(2), &[speech.clone(), noise.clone()], 480);
        assert_eq!(both[0], stream_block(&mut node(1), &[speech], 480)[0]);
        assert_eq!(both[1], stream_block(&mut node(1), &[noise], 480)[0]);
    }

    #[test]
    fn only_48k_input_and_no_params_are_accepted() {
        let err = Denoise::new(&json!({}), Format::new(16_000, 1).unwrap()).err().unwrap();
        assert!(matches!(err, NodeError::BadFormat { .. }), "{err}");
        assert!(err.to_string().contains("48 kHz"));
        assert!(matches!(Denoise::new(&json!({ "level": 1 }), Format::new(48_000, 1).unwrap()), Err(NodeError::BadParams { .. })));
        assert!(node(1).set_param("level", &json!(1)).is_err());
    }
}
