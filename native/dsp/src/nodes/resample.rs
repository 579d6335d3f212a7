//! `resample`: band-limited sample-rate conversion, streaming (docs/pipelines.md, docs/audio.md).
//!
//! Two engines behind one node, both fed exactly the frames each call brings (nothing is buffered
//! beyond the filter's own history), both emitting every output frame the input so far determines:
//!
//! - When fs_out/fs_in reduces to `L/M` with `L <= 512` (48k↔16k, 48k↔8k, 44.1k↔48k, 22.05k↔16k,
//!   …) and the coefficient table fits in 1 MiB: our own polyphase FIR ([`polyphase`]), a
//!   Kaiser-windowed sinc designed per preset, one SIMD dot product per output frame. Its delay
//!   is a whole number of output frames by construction, so the latency below is exact. At
//!   `high` with rates at least 3:1 apart (48k↔16k, 48k→8k, …) two such stages ([`cascade`]): a
//!   cheap 2:1 stage at the higher rate and the sharp filter against the middle rate, which halves
//!   its taps per output; the delay stays exact.
//! - Otherwise: rubato's `Async` sinc resampler with a fixed ratio, its chunk size set to the
//!   block length before every push. Its delay is about half the sinc length at the output rate
//!   (derived in `delay_frames`), rounded to the nearest frame.
//!
//! The output is the input delayed by [`NodeCore::latency_frames`] output frames, never trimmed.
//!
//! ```text
//! input   |x0 x1 x2 …  x(N-1)|                         N frames at fs_in
//! output  |0 … 0| y0 y1 …               y(M-1)|        D + M frames at fs_out after flush
//!          <-D->                                        D = latency_frames(), M = round(N·fs_out/fs_in)
//! ```
//! `M` rounds half up: `M = floor((2·N·fs_out + fs_in) / (2·fs_in))`, computed in integers.

pub mod cascade;
pub mod polyphase;
#[cfg(test)]
mod fidelity;

use rubato::audioadapter_buffers::direct::SequentialSliceOfSlices;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, Resizable, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};
use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::{Format, MAX_CHANNELS};
use crate::node::{check_range, parse_params, BlockNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "resample";

/// Most input frames rubato takes in one push; longer blocks are pushed in pieces. It sizes
/// rubato's internal buffer (`2·sinc_len + MAX_CHUNK` frames per channel), nothing else.
const MAX_CHUNK: usize = 8192;

/// Speed/quality trade-off of the anti-aliasing filter.
///
/// Polyphase engine (see [`Quality::design`]): passband edge, stopband edge (fractions of the lower
/// Nyquist rate) and stopband attenuation; [`Quality::band`] states what each preset delivers and
/// the fidelity tests hold it to that. rubato engine (other ratios): see `Quality::preset`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// Cheapest. Polyphase: flat to 0.7·Nyquist, 75 dB stopband from Nyquist; rubato: 32-tap
    /// sinc. THD+N of a 1 kHz tone well below -60 dB (docs/audio.md).
    Fast,
    /// Polyphase: flat to 0.8·Nyquist, 95 dB stopband; rubato: 128-tap sinc.
    #[default]
    Balanced,
    /// Polyphase: flat to 0.9·Nyquist, -3 dB past 0.95·Nyquist, 100 dB stopband from Nyquist up,
    /// THD+N at or below -120 dB (docs/audio.md); rubato: 256-tap sinc with cubic interpolation
    /// of the filter table, THD+N at or below -90 dB.
    High,
}

/// What a preset delivers on the polyphase engine (48k↔16k, 44.1k↔48k, …), as fractions of the
/// lower of the two Nyquist rates. These are the numbers `/v1/nodes` and the README state and the
/// fidelity tests measure with stepped sines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    /// The response stays within ±0.1 dB from DC up to here.
    pub flat_to: f64,
    /// The response is at most 3 dB down up to here.
    pub minus_3db_at_or_above: f64,
    /// Everything from the lower Nyquist rate up is attenuated by at least this much (no aliasing
    /// when decimating, no image when interpolating).
    pub rejection_db: f64,
    /// THD+N of a -6 dBFS 1 kHz tone, 48k↔16k, `f32le` output: at most this.
    pub thd_n_db: f64,
}

impl Quality {
    /// The polyphase prototype of each preset. The stopband starts at the lower Nyquist rate, so
    /// nothing aliases (down) and no image survives (up) above the attenuation; the transition
    /// band below it is the price of a shorter filter.
    ///
    /// `high`: a Kaiser window for 104 dB over 0.92..1.0 puts the -6 dB cutoff at 0.96, the
    /// -3 dB point at 0.953 and the 0.1 dB edge at 0.933 (the 1 kHz tone's images at 15 and
    /// 17 kHz, 16k→48k, fall where the sidelobes are below -125 dB, so THD+N stays under -120 dB).
    pub fn design(self) -> polyphase::Design {
        let (pass, stop, attenuation_db) = match self {
            Quality::Fast => (0.70, 1.0, 75.0),
            Quality::Balanced => (0.80, 1.0, 95.0),
            Quality::High => (0.92, 1.0, 104.0),
        };
        polyphase::Design { pass, stop, attenuation_db }
    }

    /// The band edges, rejection and THD+N each preset guarantees (see [`Band`]).
    pub fn band(self) -> Band {
        match self {
            Quality::Fast => Band { flat_to: 0.70, minus_3db_at_or_above: 0.80, rejection_db: 70.0, thd_n_db: -60.0 },
            Quality::Balanced => Band { flat_to: 0.80, minus_3db_at_or_above: 0.87, rejection_db: 90.0, thd_n_db: -80.0 },
            Quality::High => Band { flat_to: 0.90, minus_3db_at_or_above: 0.95, rejection_db: 100.0, thd_n_db: -120.0 },
        }
    }

    /// The sinc filter of each preset. Longer sincs give a steeper transition band (cutoff closer
    /// to Nyquist) and more delay; oversampling and the interpolation between table entries set how
    /// exactly fractional positions are hit.
    fn preset(self) -> (usize, usize, SincInterpolationType, WindowFunction) {
        match self {
            Quality::Fast => (32, 64, SincInterpolationType::Linear, WindowFunction::Hann2),
            Quality::Balanced => (128, 256, SincInterpolationType::Linear, WindowFunction::BlackmanHarris2),
            Quality::High => (256, 256, SincInterpolationType::Cubic, WindowFunction::BlackmanHarris2),
        }
    }

    fn sinc_parameters(self) -> SincInterpolationParameters {
        let (len, oversampling, interpolation, window) = self.preset();
        // f_cutoff stays automatic: rubato picks it from the length and window, and scales it
        // below the output Nyquist when downsampling.
        SincInterpolationParameters::new(len, window).oversampling_factor(oversampling).interpolation(interpolation)
    }
}

/// The delay of rubato's sinc resampler in output frames, rounded to the nearest frame.
///
/// The filter is centred `sinc_len / 2` input frames back, i.e. `r·sinc_len/2` output frames
/// (`r` = fs_out/fs_in; rubato's `output_delay` is this, truncated). But rubato advances its
/// position before computing each output frame, so output frame `k` sits at input time
/// `(k + 1)/r - sinc_len/2`: one output frame earlier. Its filter table is also centred one
/// table step (`1/oversampling` input frames) early. Together:
/// `delay = r·sinc_len/2 - 1 - r/oversampling`, which the phase of a tone through the node
/// confirms to a few thousandths of a frame (see the tests).
fn delay_frames(quality: Quality, ratio: f64) -> usize {
    let (len, oversampling, _, _) = quality.preset();
    (ratio * len as f64 / 2.0 - 1.0 - ratio / oversampling as f64).round().max(0.0) as usize
}

/// Params of `resample`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResampleParams {
    /// Output rate, 8000..=192000. Required.
    pub sample_rate: Option<u32>,
    /// `fast`, `balanced` (default) or `high`.
    pub quality: Quality,
}

/// Which resampler a node runs.
enum Engine {
    /// Equal rates: the node copies.
    Copy,
    /// Rational ratio with a small `L`: our polyphase FIR.
    Polyphase(Box<polyphase::Polyphase>),
    /// `high` with rates at least 3:1 apart: a 2:1 stage and the sharp polyphase FIR.
    Cascade(Box<cascade::Cascade>),
    /// Any other ratio: rubato's sinc resampler.
    Sinc(Box<Async<f32>>),
}

/// Converts every channel of its input to `sample_rate`.
pub struct Resample {
    input: Format,
    output: Format,
    engine: Engine,
    latency: usize,
    /// Input frames consumed since the stream began (for the flush length).
    frames_in: u64,
    /// Output frames written since the stream began.
    frames_out: u64,
}

impl Resample {
    /// Builds a resampler from `input`'s rate to `params.sample_rate`.
    pub fn new(params: &Value, input: Format) -> Result<Resample, NodeError> {
        let p: ResampleParams = parse_params(TYPE, params)?;
        let rate = p.sample_rate.ok_or_else(|| NodeError::params(TYPE, "sample_rate is required"))?;
        let rate = check_range(TYPE, "sample_rate", rate, 8_000, 192_000)?;
        let output = Format { sample_rate: rate, channels: input.channels };
        if rate == input.sample_rate {
            return Ok(Resample { input, output, engine: Engine::Copy, latency: 0, frames_in: 0, frames_out: 0 });
        }
        if p.quality == Quality::High {
            if let Some(c) = cascade::Cascade::new(input.sample_rate, rate, input.channels, p.quality.design()) {
                let latency = c.delay();
                let engine = Engine::Cascade(Box::new(c));
                return Ok(Resample { input, output, engine, latency, frames_in: 0, frames_out: 0 });
            }
        }
        if let Some(poly) = polyphase::Polyphase::new(input.sample_rate, rate, input.channels, p.quality.design()) {
            let latency = poly.delay();
            let engine = Engine::Polyphase(Box::new(poly));
            return Ok(Resample { input, output, engine, latency, frames_in: 0, frames_out: 0 });
        }
        let ratio = f64::from(rate) / f64::from(input.sample_rate);
        // max_resample_ratio_relative = 1: the ratio is fixed for the node's life.
        let sinc = Async::<f32>::new_sinc(
            ratio,
            1.0,
            &p.quality.sinc_parameters(),
            MAX_CHUNK,
            input.channels,
            FixedAsync::Input,
        )
        .map_err(|e| NodeError::params(TYPE, e.to_string()))?;
        let latency = delay_frames(p.quality, ratio);
        Ok(Resample { input, output, engine: Engine::Sinc(Box::new(sinc)), latency, frames_in: 0, frames_out: 0 })
    }

    fn ratio(&self) -> f64 {
        f64::from(self.output.sample_rate) / f64::from(self.input.sample_rate)
    }

    /// Output frames the whole stream owes after `flush`: `round(N·fs_out/fs_in)` (half up) plus
    /// the delay, so the output holds the entire input however the stream was cut.
    fn total_output_frames(&self) -> u64 {
        let (fi, fo) = (u64::from(self.input.sample_rate), u64::from(self.output.sample_rate));
        (2 * self.frames_in * fo + fi) / (2 * fi) + self.latency as u64
    }
}

/// Empty per-channel input slices, for pushes that feed rubato zeros (`partial_len = 0`).
const NO_INPUT: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];

impl NodeCore for Resample {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.output
    }

    fn latency_frames(&self) -> usize {
        self.latency
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        match name {
            // Changing either would rebuild the filter and shift the stream's timing.
            "sample_rate" | "quality" => Err(NodeError::params(TYPE, format!("{name} cannot change live"))),
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {
        match &mut self.engine {
            Engine::Copy => {}
            Engine::Polyphase(p) => p.reset(),
            Engine::Cascade(c) => c.reset(),
            Engine::Sinc(s) => s.reset(),
        }
        self.frames_in = 0;
        self.frames_out = 0;
    }
}

impl BlockNode for Resample {
    /// A bound for one `process` call of `input_frames`, and (with 0) for `flush`.
    ///
    /// Polyphase: after `N` input frames exactly `ceil(N·L/M)` output frames are out, so one call
    /// adds at most `ceil(n·L/M)`, and flush (which ends at `round(N·L/M) + D`) at most `D`.
    ///
    /// rubato emits output frame `k` once its window lies inside the input, so after `N` input
    /// frames about `floor((N - 2)·r)` frames are out (`r` = fs_out/fs_in): one call adds at most
    /// `ceil(n·r) + 1`, and flush at most `D + 2r + 2` plus the overshoot of its last zero push
    /// (`< r + 2`, cut off). The sum below covers both with a few frames to spare.
    fn max_output_frames(&self, input_frames: usize) -> usize {
        let r = match &self.engine {
            Engine::Copy => return input_frames,
            Engine::Polyphase(p) => {
                let (l, m) = p.factors();
                return (input_frames * l).div_ceil(m) + self.latency;
            }
            Engine::Cascade(c) => return c.max_output_frames(input_frames) + self.latency,
            Engine::Sinc(_) => self.ratio(),
        };
        (input_frames as f64 * r).ceil() as usize + self.latency + (3.0 * r).ceil() as usize + 8
    }

    fn process(&mut self, input: &AudioBuf, output: &mut AudioBuf, _ctx: &mut Ctx<'_>) {
        let n = input.frames();
        let channels = self.input.channels;
        debug_assert_eq!(input.channels(), channels);
        self.frames_in += n as u64;
        if let Engine::Copy = self.engine {
            output.copy_from(input);
            self.frames_out += n as u64;
            return;
        }

        let mut ins = NO_INPUT;
        for (c, slot) in ins.iter_mut().enumerate().take(channels) {
            *slot = input.channel(c);
        }
        // Callers size `output` by max_output_frames, so this never grows it in steady state.
        let cap = output.capacity_frames().max(self.max_output_frames(n));
        output.set_shape(channels, cap);
        let mut outs: [&mut [f32]; MAX_CHANNELS] = Default::default();
        output.planes_mut(&mut outs);
        let sinc = match &mut self.engine {
            Engine::Polyphase(p) => {
                let written = p.process(&ins[..channels], n, &mut outs[..channels], 0);
                output.set_frames(written);
                self.frames_out += written as u64;
                return;
            }
            Engine::Cascade(c) => {
                let written = c.process(&ins[..channels], n, &mut outs[..channels], 0);
                output.set_frames(written);
                self.frames_out += written as u64;
                return;
            }
            Engine::Sinc(s) => s.as_mut(),
            Engine::Copy => unreachable!("handled above"),
        };
        let written = {
            let ia = SequentialSliceOfSlices::new(&ins[..channels], channels, n).expect("input planes hold n frames");
            let mut oa = SequentialSliceOfSlices::new_mut(&mut outs[..channels], channels, cap)
                .expect("output planes hold their capacity");
            let mut done = 0;
            let mut written = 0;
            while done < n {
                let m = (n - done).min(MAX_CHUNK);
                sinc.set_chunk_size(m).expect("1 <= m <= MAX_CHUNK");
                let at = Indexing { input_offset: done, output_offset: written, partial_len: None, active_channels_mask: None };
                let (_, out) = sinc
                    .process_into_buffer(&ia, &mut oa, Some(&at))
                    .expect("output sized by max_output_frames");
                done += m;
                written += out;
            }
            written
        };
        output.set_frames(written);
        self.frames_out += written as u64;
    }

    fn flush(&mut self, output: &mut AudioBuf, _ctx: &mut Ctx<'_>) {
        let channels = self.input.channels;
        let owed = self.total_output_frames().saturating_sub(self.frames_out) as usize;
        let r = self.ratio();
        let sinc = match &mut self.engine {
            Engine::Copy => {
                output.set_shape(channels, 0);
                self.reset();
                return;
            }
            Engine::Polyphase(p) => {
                let cap = output.capacity_frames().max(owed);
                output.set_shape(channels, cap);
                let mut outs: [&mut [f32]; MAX_CHANNELS] = Default::default();
                output.planes_mut(&mut outs);
                p.flush(owed, &mut outs[..channels], 0);
                output.set_frames(owed);
                self.reset();
                return;
            }
            Engine::Cascade(c) => {
                let cap = output.capacity_frames().max(owed);
                output.set_shape(channels, cap);
                let mut outs: [&mut [f32]; MAX_CHANNELS] = Default::default();
                output.planes_mut(&mut outs);
                c.flush(owed, &mut outs[..channels], 0);
                output.set_frames(owed);
                self.reset();
                return;
            }
            Engine::Sinc(s) => s.as_mut(),
        };
        // Feed zeros until the tail is out; the last push may overshoot by a frame or two, which
        // is cut off (the stream ends here).
        let cap = output.capacity_frames().max(owed + r.ceil() as usize + 2);
        output.set_shape(channels, cap);
        let mut outs: [&mut [f32]; MAX_CHANNELS] = Default::default();
        output.planes_mut(&mut outs);
        {
            let ia = SequentialSliceOfSlices::new(&NO_INPUT[..channels], channels, 0).expect("empty planes");
            let mut oa = SequentialSliceOfSlices::new_mut(&mut outs[..channels], channels, cap)
                .expect("output planes hold their capacity");
            let mut written = 0;
            while written < owed {
                let mut m = (((owed - written) as f64 / r).ceil() as usize + 1).clamp(1, MAX_CHUNK);
                sinc.set_chunk_size(m).expect("1 <= m <= MAX_CHUNK");
                // One zero frame yields at most ceil(r) + 1 frames, which `cap` leaves room for.
                while m > 1 && written + sinc.output_frames_next() > cap {
                    m -= 1;
                    sinc.set_chunk_size(m).expect("1 <= m <= MAX_CHUNK");
                }
                // partial_len 0: rubato reads no input and pads the whole chunk with zeros.
                let at = Indexing { input_offset: 0, output_offset: written, partial_len: Some(0), active_channels_mask: None };
                let (_, out) = sinc.process_into_buffer(&ia, &mut oa, Some(&at)).expect("output sized above");
                written += out;
            }
        }
        output.set_frames(owed);
        self.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{buf_of, sine, stream_block, thd_n_db, EventLog};
    use serde_json::json;
    use std::f64::consts::PI;

    fn node(from: u32, to: u32, channels: usize, quality: &str) -> Resample {
        let f = Format::new(from, channels).unwrap();
        Resample::new(&json!({ "sample_rate": to, "quality": quality }), f).unwrap()
    }

    fn expected_len(n: usize, from: u32, to: u32, latency: usize) -> usize {
        ((2 * n as u64 * u64::from(to) + u64::from(from)) / (2 * u64::from(from))) as usize + latency
    }

    /// THD+N of a -6 dBFS 1 kHz tone through `from -> to`, on the steady state only: the first
    /// `latency + 2·sinc` output frames (filter start-up) and the last as many (the flushed tail
    /// decaying into silence) are skipped.
    fn tone_thd_n(from: u32, to: u32, quality: &str) -> f64 {
        let mut r = node(from, to, 1, quality);
        let x = sine(1000.0, from, 0.5, from as usize * 2);
        let y = stream_block(&mut r, &[x], from as usize / 100);
        let skip = r.latency_frames() * 3 + 600;
        let y = &y[0][skip..y[0].len() - skip];
        thd_n_db(y, 1000.0, to)
    }

    #[test]
    fn a_tone_stays_clean_at_each_quality() {
        // 11025 -> 48000 reduces to 640/147: rubato's engine.
        for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000), (11_025, 48_000)] {
            for (quality, limit) in [("fast", -60.0), ("balanced", -80.0), ("high", -90.0)] {
                let t = tone_thd_n(from, to, quality);
                eprintln!("resample {from}->{to} {quality}: THD+N {t:.1} dB");
                assert!(t <= limit, "{from}->{to} {quality}: THD+N {t:.1} dB > {limit} dB");
            }
        }
    }

    /// The delay in output frames of a tone of `freq` in `y`, from the phase of its best-fitting
    /// sine over half a second starting at `start` (past the filter's start-up), against the
    /// input tone `sin(2π·freq·t)` that started at t = 0. A linear-phase filter delays every
    /// frequency alike, so this is the group delay; it is known modulo one period of the tone.
    fn measured_delay(y: &[f32], start: usize, freq: f64, rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
        let (mut s, mut c) = (0.0, 0.0);
        for (i, &v) in y.iter().enumerate().skip(start).take(rate as usize / 2) {
            s += f64::from(v) * (w * i as f64).sin();
            c += f64::from(v) * (w * i as f64).cos();
        }
        // y[i] ≈ A·sin(w·(i - d)) = A·(sin(wi)cos(wd) - cos(wi)sin(wd)) → s ∝ cos(wd), c ∝ -sin(wd).
        let phase = (-c).atan2(s);
        phase / w
    }

    #[test]
    fn reported_latency_matches_the_measured_delay() {
        // A 170 Hz tone: its period (≥ 47 output frames even at 8 kHz) exceeds every preset's
        // delay error, and the reported latency resolves the whole periods.
        for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000), (48_000, 8_000), (11_025, 48_000)] {
            for quality in ["fast", "balanced", "high"] {
                let mut r = node(from, to, 1, quality);
                let freq = 170.0;
                let x = sine(freq, from, 0.5, from as usize);
                let y = stream_block(&mut r, &[x], 0);
                let latency = r.latency_frames() as f64;
                let period = f64::from(to) / freq;
                let d = measured_delay(&y[0], r.latency_frames() * 2 + 200, freq, to);
                // Bring the measured phase delay to the period nearest the reported latency.
                let d = d + ((latency - d) / period).round() * period;
                eprintln!("resample {from}->{to} {quality}: latency {latency}, measured delay {d:.3} output frames");
                assert!((d - latency).abs() <= 0.51, "{from}->{to} {quality}: reported {latency}, measured {d:.3}");
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_how_the_stream_is_cut() {
        for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000), (11_025, 16_000)] {
            let x = sine(997.0, from, 0.5, from as usize / 2);
            let noise: Vec<f32> = (0..x.len()).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * 0.2).collect();
            let planes = vec![x, noise];
            for quality in ["fast", "balanced", "high"] {
                let whole = stream_block(&mut node(from, to, 2, quality), &planes, 0);
                let ms = from as usize / 1000;
                for chunk in [10 * ms, 20 * ms, 37 * ms, 1, 7, MAX_CHUNK + 3] {
                    let cut = stream_block(&mut node(from, to, 2, quality), &planes, chunk);
                    for c in 0..2 {
                        assert_eq!(cut[c].len(), whole[c].len(), "{from}->{to} {quality} chunk {chunk}");
                        let worst =
                            cut[c].iter().zip(&whole[c]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                        assert!(worst <= 1e-6, "{from}->{to} {quality} chunk {chunk} ch {c}: differs by {worst}");
                    }
                }
            }
        }
    }

    #[test]
    fn polyphase_output_is_bit_exact_however_the_stream_is_cut() {
        // Streaming must equal batch exactly (the JS tests compare s16 bytes): every output frame
        // is the same dot product in the same order whichever block it falls in.
        for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000), (48_000, 44_100)] {
            let planes = vec![sine(997.0, from, 0.5, from as usize / 4), sine(3_001.0, from, 0.3, from as usize / 4)];
            for quality in ["fast", "high"] {
                let whole = stream_block(&mut node(from, to, 2, quality), &planes, 0);
                for chunk in [1, 2, 3, 5, 7, 160, 441, from as usize / 50] {
                    let cut = stream_block(&mut node(from, to, 2, quality), &planes, chunk);
                    assert!(cut == whole, "{from}->{to} {quality} chunk {chunk}");
                }
            }
        }
    }

    #[test]
    fn flushed_length_is_the_rounded_ratio_plus_latency() {
        for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000), (48_000, 44_100), (22_050, 8_000), (11_025, 48_000)] {
            for n in [0, 1, 2, 3, 100, 479, 480, 1000, 4801] {
                for chunk in [0, 1, 160, 441] {
                    let mut r = node(from, to, 1, "fast");
                    let y = stream_block(&mut r, &[vec![0.1; n]], chunk);
                    let want = expected_len(n, from, to, r.latency_frames());
                    assert_eq!(y[0].len(), want, "{from}->{to} n {n} chunk {chunk}");
                }
            }
        }
        // Half rounds up: 1 frame at 16k -> 48k is exactly 3; 3 frames at 44.1k -> 8k is 0.544 -> 1.
        assert_eq!(expected_len(3, 44_100, 8_000, 0), 1);
    }

    #[test]
    fn max_output_frames_bounds_every_call() {
        for (from, to) in [(48_000, 16_000), (8_000, 192_000), (44_100, 48_000), (11_025, 48_000)] {
            for quality in ["fast", "high"] {
                let mut r = node(from, to, 1, quality);
                let mut log = EventLog::default();
                let mut out = AudioBuf::new(1, 0);
                let mut pos = 0;
                for (k, len) in [1usize, 7, 480, 3, 9000, 1, 1, 2, 333].into_iter().enumerate() {
                    let x = buf_of(&[sine(440.0, from, 0.5, len + pos)[pos..].to_vec()]);
                    pos += len;
                    r.process(&x, &mut out, &mut log.ctx("r", k as u64, 0));
                    assert!(out.frames() <= r.max_output_frames(len), "{from}->{to} {len}: {}", out.frames());
                }
                r.flush(&mut out, &mut log.ctx("r", 9, 0));
                assert!(out.frames() <= r.max_output_frames(0), "flush {from}->{to}: {}", out.frames());
            }
        }
    }

    #[test]
    fn stereo_channels_stay_independent() {
        let left = sine(440.0, 48_000, 0.5, 4800);
        let right = vec![0.0; 4800];
        let y = stream_block(&mut node(48_000, 16_000, 2, "high"), &[left.clone(), right], 480);
        assert!(y[1].iter().all(|&v| v == 0.0), "silence on the right stays silent");
        // 48k -> 16k runs the polyphase engine, whose channels are computed alike (bit for bit);
        // the tolerance is rubato's (it sums multi-channel frames along a different path).
        let mono = stream_block(&mut node(48_000, 16_000, 1, "high"), &[left], 480);
        assert_eq!(y[0].len(), mono[0].len());
        let worst = y[0].iter().zip(&mono[0]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "left differs from mono by {worst}");
    }

    #[test]
    fn rational_ratios_use_the_polyphase_engine() {
        for (from, to, poly) in [
            (48_000, 16_000, true),
            (16_000, 48_000, true),
            (44_100, 48_000, true),
            (48_000, 8_000, true),
            (22_050, 16_000, true),
            (44_100, 16_000, true),
            (8_000, 192_000, true),
            (11_025, 48_000, false),
            (44_100, 44_101, false),
        ] {
            for quality in ["fast", "balanced", "high"] {
                let r = node(from, to, 1, quality);
                assert_eq!(matches!(r.engine, Engine::Polyphase(_) | Engine::Cascade(_)), poly, "{from}->{to} {quality}");
                if let Engine::Cascade(c) = &r.engine {
                    eprintln!("resample {from}->{to} {quality}: two stages, {:?} taps, latency {}", c.taps(), r.latency_frames());
                }
                if let Engine::Polyphase(p) = &r.engine {
                    let (l, m) = p.factors();
                    eprintln!(
                        "resample {from}->{to} {quality}: L/M {l}/{m}, {} taps per phase, table {} KiB, latency {}",
                        p.taps(),
                        l * p.taps() * 4 / 1024,
                        r.latency_frames()
                    );
                }
            }
        }
    }

    /// Amplitude of the best-fitting sine of `freq` in `y` (least squares on sin and cos).
    fn amplitude(y: &[f32], freq: f64, rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(rate);
        let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, &v) in y.iter().enumerate() {
            let (s, c, v) = ((w * i as f64).sin(), (w * i as f64).cos(), f64::from(v));
            (ss, cc, sc, ys, yc) = (ss + s * s, cc + c * c, sc + s * c, ys + v * s, yc + v * c);
        }
        let det = ss * cc - sc * sc;
        let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
        a.hypot(b)
    }

    /// The steady-state output of a 0.5-amplitude tone of `freq` through `from -> to`.
    fn steady_output(from: u32, to: u32, quality: &str, freq: f64) -> Vec<f32> {
        let mut r = node(from, to, 1, quality);
        let y = stream_block(&mut r, &[sine(freq, from, 0.5, from as usize)], from as usize / 50);
        let skip = r.latency_frames() * 3 + 600;
        y[0][skip..y[0].len() - skip].to_vec()
    }

    #[test]
    fn tones_above_the_output_nyquist_do_not_alias() {
        // 12 kHz into 48k -> 16k would fold to 4 kHz; 9 kHz (just past Nyquist) to 7 kHz.
        for (freq, quality, limit) in [(12_000.0, "high", -90.0), (9_000.0, "high", -90.0), (12_000.0, "balanced", -80.0), (12_000.0, "fast", -60.0)] {
            let y = steady_output(48_000, 16_000, quality, freq);
            let rms = (y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
            let db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
            eprintln!("resample 48000->16000 {quality}: {freq} Hz comes out at {db:.1} dB");
            assert!(db <= limit, "{quality} {freq} Hz: {db:.1} dB > {limit} dB");
        }
        // Up: the image of a 7 kHz tone at 16k -> 48k lands at 9 kHz; all that is left once the
        // tone itself is fitted and removed (the image, and any noise) stays below -90 dB.
        let y = steady_output(16_000, 48_000, "high", 7_000.0);
        let image = thd_n_db(&y, 7_000.0, 48_000);
        eprintln!("resample 16000->48000 high: 7 kHz tone, all but the tone (its 9 kHz image) {image:.1} dB");
        assert!(image <= -90.0, "image {image:.1} dB");
    }

    #[test]
    fn the_passband_is_flat_at_high_quality() {
        for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000)] {
            let top = 0.8 * f64::from(from.min(to)) / 2.0;
            let mut worst: f64 = 0.0;
            for freq in [100.0, 440.0, 1_000.0, 2_500.0, 0.5 * top, 0.75 * top, 0.9 * top, top] {
                let y = steady_output(from, to, "high", freq);
                let gain = 20.0 * (amplitude(&y, freq, to) / 0.5).log10();
                worst = if gain.abs() > worst.abs() { gain } else { worst };
                assert!(gain.abs() <= 0.1, "{from}->{to} {freq} Hz: gain {gain:.3} dB");
            }
            eprintln!("resample {from}->{to} high: passband 100 Hz..{top} Hz within {worst:.5} dB");
        }
    }

    #[test]
    fn same_rate_copies_with_no_latency() {
        let mut r = node(16_000, 16_000, 1, "high");
        assert_eq!(r.latency_frames(), 0);
        let x = sine(440.0, 16_000, 0.5, 1000);
        let y = stream_block(&mut r, std::slice::from_ref(&x), 37);
        assert_eq!(y[0], x);
    }

    #[test]
    fn params_are_validated_and_fixed_for_life() {
        let f = Format::new(48_000, 1).unwrap();
        for bad in [json!({}), json!({ "sample_rate": 7999 }), json!({ "sample_rate": 16000, "quality": "best" }), json!({ "rate": 16000 })] {
            assert!(matches!(Resample::new(&bad, f), Err(NodeError::BadParams { .. })), "{bad}");
        }
        let mut r = Resample::new(&json!({ "sample_rate": 16000 }), f).unwrap();
        assert_eq!(r.output_format(), Format { sample_rate: 16_000, channels: 1 });
        assert!(r.set_param("quality", &json!("fast")).is_err());
        assert!(r.set_param("sample_rate", &json!(8000)).is_err());
    }
}
