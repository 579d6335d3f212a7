//! `normalize`: streaming level normalisation, an automatic gain control (docs/pipelines.md).
//!
//! ```text
//!  x ─┬────────────────────────────────────────────────(×)──▶ y
//!     └▶ level detector ─▶ dB ─▶ target − level ─▶ clamp ─▶ smooth ─┘
//!        (all channels)          (hold below −70 dBFS)      (attack fast, release slow)
//! ```
//! - `rms`: a one-pole average of the mean square with time constant `window_ms / 2`: a one-pole
//!   with time constant τ averages about as much noise as a boxcar of 2τ, so this tracks the RMS
//!   over roughly `window_ms`.
//! - `peak`: a peak follower, instant attack, release with time constant `window_ms`.
//!
//! Both detectors always run, so switching `mode` live only changes which one steers the gain.
//! The wanted gain is clamped to `[-60 dB, max_gain_db]`; while the level is below
//! [`SILENCE_DBFS`] it is held, so pauses are not boosted into noise. The gain glides in dB,
//! falling with time constant `window_ms / 20` (so a sudden loud passage is tamed quickly) and
//! rising with `window_ms / 4`. The whole chain is plain arithmetic on the sample stream, so the
//! output is deterministic and independent of how the stream is cut into blocks.
//!
//! The control path runs once per [`BLOCK`] frames of the stream (counted from its start, not
//! from the caller's buffers, so tiling cannot change it): both detectors advance over a block
//! in closed form (a one-pole over K samples is `c^K · state + Σ (1 − c) c^(K−1−j) · x_j`, a peak
//! follower is `max(c^K · state, max_j c^(K−1−j) · |x_j|)`), the gain glides with the block's
//! coefficients `c^K`, and within the next block the linear gain moves in a straight line from
//! the old value to the new one. One logarithm and one exponential per block instead of per
//! sample, and the per-frame work (weighted square, weighted peak, gain ramp) done in f32 eight
//! frames at a time (one SIMD vector; the block sums go to f64 at the block's end), is what keeps
//! a 20 ms frame under a microsecond; the control lags by at most one block (4 ms at 16 kHz,
//! 1.3 ms at 48 kHz), below the time constants of the default params.

use serde::Deserialize;
use serde_json::Value;

use super::dynamics::coef;
use crate::buffer::AudioView;
use crate::format::{Format, MAX_CHANNELS};
use crate::node::{param_number, check_range, parse_params, Ctx, InPlaceNode, NodeCore, NodeError};

const TYPE: &str = "normalize";
/// Below this level the gain is held rather than raised.
pub const SILENCE_DBFS: f64 = -70.0;
/// The most the gain may cut.
pub const MIN_GAIN_DB: f64 = -60.0;
/// dB per doubling of amplitude, 20·log10(2).
const DB_PER_OCTAVE: f64 = 20.0 * std::f64::consts::LOG10_2;
/// Frames per step of the control path (see the module docs).
pub const BLOCK: usize = 64;
/// Partial sums per detector: one SIMD vector of f32 (see [`Normalize::detect_and_apply`]).
const LANES: usize = 8;

/// Which level the target refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Sample peaks (a sine's peak is its amplitude).
    Peak,
    /// Root mean square (a sine's RMS is its amplitude / √2, 3.01 dB below its peak).
    Rms,
}

/// Params of `normalize`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeParams {
    /// Level to reach, -60..=0 dBFS.
    pub target_dbfs: f64,
    /// Level measure.
    pub mode: Mode,
    /// Detector window, 10..=5000 ms.
    pub window_ms: f64,
    /// Most boost applied, 0..=60 dB.
    pub max_gain_db: f64,
}

impl Default for NormalizeParams {
    fn default() -> Self {
        NormalizeParams { target_dbfs: -3.0, mode: Mode::Rms, window_ms: 300.0, max_gain_db: 24.0 }
    }
}

impl NormalizeParams {
    fn check(self) -> Result<Self, NodeError> {
        check_range(TYPE, "target_dbfs", self.target_dbfs, -60.0, 0.0)?;
        check_range(TYPE, "window_ms", self.window_ms, 10.0, 5000.0)?;
        check_range(TYPE, "max_gain_db", self.max_gain_db, 0.0, 60.0)?;
        Ok(self)
    }
}

/// The AGC; see the module docs.
pub struct Normalize {
    format: Format,
    params: NormalizeParams,
    /// `c^BLOCK` of the RMS one-pole.
    rms_decay: f64,
    /// `(1 − c) c^(BLOCK−1−j)`: the weight of the block's frame `j` in the RMS one-pole.
    rms_weights: [f32; BLOCK],
    /// `c^BLOCK` of the peak follower's release.
    peak_decay: f64,
    /// `c^(BLOCK−1−j)`: how much frame `j`'s peak has decayed by the block's end.
    peak_weights: [f32; BLOCK],
    /// `j + 1`: frame `j`'s step along the block's gain ramp.
    ramp: [f32; BLOCK],
    /// `1 / channels` of the latest call (the detectors average the channels).
    per_channel: f64,
    /// Gain glide coefficients per block.
    attack_coef: f64,
    release_coef: f64,
    mean_square: f64,
    peak: f64,
    gain_db: f64,
    /// The current block's linear gain ramp: from `gain_from` (exclusive) by `gain_step` per frame to `gain_to`.
    gain_from: f32,
    gain_step: f32,
    gain_to: f32,
    /// Frames of the current block seen so far, and their detector inputs.
    pos: usize,
    /// The current block's weighted mean-square sum, per channel in [`LANES`] partial sums by
    /// frame index mod [`LANES`]: each sum adds its frames in stream order whatever the calls,
    /// so the result does not depend on where they split the block; one SIMD lane each.
    block_ms: [[f32; LANES]; MAX_CHANNELS],
    /// The current block's largest weighted peak, by frame index mod [`LANES`] (a maximum does
    /// not depend on order, so the channels share them).
    block_peak: [f32; LANES],
}

impl Normalize {
    /// Builds a normalizer for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Normalize, NodeError> {
        let p: NormalizeParams = parse_params::<NormalizeParams>(TYPE, params)?.check()?;
        let mut node = Normalize {
            format: input,
            params: p,
            rms_decay: 0.0,
            rms_weights: [0.0; BLOCK],
            peak_decay: 0.0,
            peak_weights: [0.0; BLOCK],
            ramp: std::array::from_fn(|j| (j + 1) as f32),
            per_channel: 1.0,
            attack_coef: 0.0,
            release_coef: 0.0,
            mean_square: 0.0,
            peak: 0.0,
            gain_db: 0.0,
            gain_from: 1.0,
            gain_step: 0.0,
            gain_to: 1.0,
            pos: 0,
            block_ms: [[0.0; LANES]; MAX_CHANNELS],
            block_peak: [0.0; LANES],
        };
        node.apply(p);
        Ok(node)
    }

    fn apply(&mut self, p: NormalizeParams) {
        let (w, sr) = (p.window_ms, self.format.sample_rate);
        self.params = p;
        let k = BLOCK as i32;
        let (rms, peak) = (coef(w / 2.0, sr), coef(w, sr));
        self.rms_decay = rms.powi(k);
        self.peak_decay = peak.powi(k);
        for j in 0..BLOCK {
            let age = (BLOCK - 1 - j) as i32;
            self.rms_weights[j] = ((1.0 - rms) * rms.powi(age)) as f32;
            self.peak_weights[j] = peak.powi(age) as f32;
        }
        self.attack_coef = coef(w / 20.0, sr).powi(k);
        self.release_coef = coef(w / 4.0, sr).powi(k);
    }

    /// Advances the detectors over the finished block and picks the gain the next block glides to.
    fn end_block(&mut self) {
        let p = self.params;
        let ms: f64 = self.block_ms.iter().flatten().map(|&s| f64::from(s)).sum();
        let block_peak = self.block_peak.iter().fold(0.0f32, |m, &p| m.max(p));
        self.mean_square = self.rms_decay * self.mean_square + ms * self.per_channel;
        self.peak = f64::from(block_peak).max(self.peak * self.peak_decay);
        self.block_ms = [[0.0; LANES]; MAX_CHANNELS];
        self.block_peak = [0.0; LANES];
        // 10·log10(x) = 10·log10(2)·log2(x): log2 and exp2 are the cheapest of their families.
        let level_db = match p.mode {
            Mode::Rms => DB_PER_OCTAVE * 0.5 * self.mean_square.max(1e-30).log2(),
            Mode::Peak => DB_PER_OCTAVE * self.peak.max(1e-15).log2(),
        };
        if level_db >= SILENCE_DBFS {
            let wanted = (p.target_dbfs - level_db).clamp(MIN_GAIN_DB, p.max_gain_db);
            let k = if wanted < self.gain_db { self.attack_coef } else { self.release_coef };
            self.gain_db = wanted + k * (self.gain_db - wanted);
        } else if self.gain_db > p.max_gain_db {
            // A live lowering of max_gain_db still applies during silence.
            self.gain_db = p.max_gain_db + self.attack_coef * (self.gain_db - p.max_gain_db);
        }
        let to = (self.gain_db / DB_PER_OCTAVE).exp2() as f32;
        self.gain_from = self.gain_to;
        self.gain_step = (to - self.gain_to) / BLOCK as f32;
        self.gain_to = to;
    }

    /// The gain applied to the latest frame, in dB.
    pub fn gain_db(&self) -> f64 {
        self.gain_db
    }
}

impl NodeCore for Normalize {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        // Every change only moves the gain's goal; the gain itself keeps gliding, so no clicks.
        let mut p = self.params;
        match name {
            "target_dbfs" => p.target_dbfs = param_number(TYPE, name, value)?,
            "window_ms" => p.window_ms = param_number(TYPE, name, value)?,
            "max_gain_db" => p.max_gain_db = param_number(TYPE, name, value)?,
            "mode" => p.mode = Mode::deserialize(value).map_err(|e| NodeError::params(TYPE, format!("mode: {e}")))?,
            other => return Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
        self.apply(p.check()?);
        Ok(())
    }

    fn reset(&mut self) {
        self.mean_square = 0.0;
        self.peak = 0.0;
        self.gain_db = 0.0;
        self.gain_from = 1.0;
        self.gain_step = 0.0;
        self.gain_to = 1.0;
        self.pos = 0;
        self.block_ms = [[0.0; LANES]; MAX_CHANNELS];
        self.block_peak = [0.0; LANES];
    }
}

impl InPlaceNode for Normalize {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        let frames = view.frames();
        let channels = view.channels();
        self.per_channel = 1.0 / channels.max(1) as f64;
        let mut start = 0;
        while start < frames {
            // One pass per channel over the rest of the current block: detector sums and gain ramp.
            let (from, to) = (self.pos, BLOCK.min(self.pos + frames - start));
            let n = to - from;
            let ramp = Ramp { from: self.gain_from, step: self.gain_step };
            for c in 0..channels {
                let x = &mut view.channel_mut(c)[start..start + n];
                self.detect_and_apply(c, x, from, ramp);
            }
            start += n;
            self.pos = to;
            if to == BLOCK {
                self.end_block();
                self.pos = 0;
            }
        }
    }
}

/// The linear gain of one block: `from + step·(j + 1)` at its frame `j`.
#[derive(Clone, Copy)]
struct Ramp {
    from: f32,
    step: f32,
}

impl Normalize {
    /// Frames `from..from + x.len()` of the current block of `channel`: adds them to the
    /// detector sums and applies the gain ramp. Frame `j` always lands in lane `j % LANES`; the
    /// frames between multiples of [`LANES`] go eight at a time (one SIMD vector per array).
    fn detect_and_apply(&mut self, channel: usize, x: &mut [f32], from: usize, ramp: Ramp) {
        // Local copies (registers), written back at the end.
        let (mut sums, mut peaks) = (self.block_ms[channel], self.block_peak);
        let (sums, peaks) = (&mut sums, &mut peaks);
        let (rms_w, peak_w, steps) = (&self.rms_weights, &self.peak_weights, &self.ramp);
        let frame = |j: usize, v: &mut f32, sums: &mut [f32; LANES], peaks: &mut [f32; LANES]| {
            let (x, lane) = (*v, j % LANES);
            sums[lane] += rms_w[j] * (x * x);
            peaks[lane] = larger(peaks[lane], peak_w[j] * x.abs());
            *v = x * (ramp.from + ramp.step * steps[j]);
        };
        let head = (from.next_multiple_of(LANES) - from).min(x.len());
        let (first, rest) = x.split_at_mut(head);
        for (i, v) in first.iter_mut().enumerate() {
            frame(from + i, v, sums, peaks);
        }
        let aligned = from + head;
        let tail_start = aligned + (rest.len() / LANES) * LANES;
        let mut chunks = rest.chunks_exact_mut(LANES);
        for (k, xs) in (&mut chunks).enumerate() {
            let j = aligned + k * LANES;
            let (rw, pw, st) = (&rms_w[j..j + LANES], &peak_w[j..j + LANES], &steps[j..j + LANES]);
            for i in 0..LANES {
                let x = xs[i];
                sums[i] += rw[i] * (x * x);
                peaks[i] = larger(peaks[i], pw[i] * x.abs());
                xs[i] = x * (ramp.from + ramp.step * st[i]);
            }
        }
        for (i, v) in chunks.into_remainder().iter_mut().enumerate() {
            frame(tail_start + i, v, sums, peaks);
        }
        self.block_ms[channel] = *sums;
        self.block_peak = *peaks;
    }
}

/// `max(a, b)` as one compare (NaN never reaches the detectors' sums of squares anyway).
#[inline]
fn larger(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, rms_dbfs, run_in_place, sine};
    use serde_json::json;

    const RATE: u32 = 48_000;

    fn mono() -> Format {
        Format::new(RATE, 1).unwrap()
    }

    fn peak_dbfs(x: &[f32]) -> f64 {
        20.0 * f64::from(x.iter().fold(0f32, |m, x| m.max(x.abs()))).log10()
    }

    #[test]
    fn a_steady_sine_converges_to_the_target_within_two_windows() {
        // -30 dBFS peak = -33.01 dBFS RMS; targets need +21 dB (rms) / +18 dB (peak).
        let x = sine(997.0, RATE, 10f64.powf(-30.0 / 20.0), 2 * RATE as usize);
        for window_ms in [100.0, 300.0] {
            let w = (window_ms * f64::from(RATE) / 1000.0) as usize;
            for (mode, measure) in [("rms", rms_dbfs as fn(&[f32]) -> f64), ("peak", peak_dbfs)] {
                let params = json!({ "target_dbfs": -12, "mode": mode, "window_ms": window_ms });
                let mut n = Normalize::new(&params, mono()).unwrap();
                let y = run_in_place(&mut n, std::slice::from_ref(&x), 480).remove(0);
                let level = measure(&y[2 * w..3 * w]);
                assert!((level - -12.0).abs() < 0.5, "{mode}, {window_ms} ms: {level} dBFS");
                let late = measure(&y[y.len() - w..]);
                assert!((late - -12.0).abs() < 0.05, "{mode}, {window_ms} ms, settled: {late} dBFS");
            }
        }
    }

    #[test]
    fn loud_input_is_turned_down() {
        let x = sine(440.0, RATE, 0.9, RATE as usize);
        let mut n = Normalize::new(&json!({ "target_dbfs": -20, "mode": "peak" }), mono()).unwrap();
        let y = run_in_place(&mut n, &[x], 480).remove(0);
        let tail = peak_dbfs(&y[RATE as usize / 2..]);
        assert!((tail - -20.0).abs() < 0.1, "{tail}");
    }

    #[test]
    fn near_silence_is_never_boosted_beyond_max_gain() {
        for (amplitude, max_gain_db) in [(1e-3, 24.0), (1e-3, 6.0), (1e-4, 24.0), (1e-6, 60.0)] {
            let x = noise(11, amplitude, RATE as usize);
            let params = json!({ "max_gain_db": max_gain_db, "window_ms": 50 });
            let mut n = Normalize::new(&params, mono()).unwrap();
            let y = run_in_place(&mut n, std::slice::from_ref(&x), 480).remove(0);
            let limit = 10f64.powf(max_gain_db / 20.0) * (1.0 + 1e-6);
            for (x, y) in x.iter().zip(&y) {
                assert!(f64::from(y.abs()) <= f64::from(x.abs()) * limit, "{amplitude}: {x} -> {y}");
            }
        }
        // -80 dBFS noise is under the silence floor: the gain stays where it was (0 dB).
        let x = noise(5, 1e-4, RATE as usize);
        let mut n = Normalize::new(&json!({}), mono()).unwrap();
        assert_eq!(run_in_place(&mut n, std::slice::from_ref(&x), 480).remove(0), x);
    }

    #[test]
    fn stereo_channels_get_the_same_gain() {
        let n = RATE as usize;
        let left = sine(300.0, RATE, 0.05, n);
        let right: Vec<f32> = noise(2, 0.2, n);
        let half: Vec<f32> = left.iter().map(|x| x * 0.5).collect();
        let stereo = Format::new(RATE, 2).unwrap();
        let y = run_in_place(&mut Normalize::new(&json!({}), stereo).unwrap(), &[left.clone(), half], 480);
        // Halving is exact in binary floating point, so one gain means exactly half the output.
        assert!(y[0].iter().zip(&y[1]).all(|(a, b)| a * 0.5 == *b));
        let y = run_in_place(&mut Normalize::new(&json!({}), stereo).unwrap(), &[left.clone(), right.clone()], 480);
        for i in (0..n).step_by(97) {
            if left[i].abs() > 1e-3 && right[i].abs() > 1e-3 {
                let (g0, g1) = (y[0][i] / left[i], y[1][i] / right[i]);
                assert!((g0 / g1 - 1.0).abs() < 1e-6, "frame {i}: {g0} vs {g1}");
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_tiling() {
        let n = RATE as usize;
        let burst: Vec<f32> =
            sine(220.0, RATE, 0.02, n).iter().enumerate().map(|(i, x)| if i > n / 2 { x * 20.0 } else { *x }).collect();
        let planes = vec![burst, noise(9, 0.01, n)];
        let stereo = Format::new(RATE, 2).unwrap();
        for mode in ["rms", "peak"] {
            let run =
                |tile| run_in_place(&mut Normalize::new(&json!({ "mode": mode }), stereo).unwrap(), &planes, tile);
            let whole = run(n);
            for tile in [1, 7, 480, 960, 1776] {
                assert_eq!(run(tile), whole, "{mode}, tile {tile}");
            }
        }
    }

    #[test]
    fn params_are_validated_and_changed_live() {
        for bad in [
            json!({ "target_dbfs": 1 }),
            json!({ "target_dbfs": -61 }),
            json!({ "window_ms": 5 }),
            json!({ "max_gain_db": 61 }),
            json!({ "mode": "lufs" }),
            json!({ "gain": 1 }),
        ] {
            assert!(matches!(Normalize::new(&bad, mono()), Err(NodeError::BadParams { .. })), "{bad}");
        }
        let mut n = Normalize::new(&json!({}), mono()).unwrap();
        assert!(n.set_param("mode", &json!("peak")).is_ok());
        assert!(n.set_param("mode", &json!("x")).is_err());
        assert!(n.set_param("window_ms", &json!(1e5)).is_err());
        assert!(n.set_param("target_dbfs", &json!(-10)).is_ok());
        // A target change glides: the output level moves without a jump.
        let x = sine(1000.0, RATE, 0.1, RATE as usize);
        let mut y = run_in_place(&mut n, &[x[..24_000].to_vec()], 480).remove(0);
        n.set_param("target_dbfs", &json!(-30)).unwrap();
        y.extend(run_in_place(&mut n, &[x[24_000..].to_vec()], 480).remove(0));
        assert!((peak_dbfs(&y[20_000..24_000]) - -10.0).abs() < 0.1);
        assert!((peak_dbfs(&y[44_000..]) - -30.0).abs() < 0.1);
        let slope = 10f64.powf(-10.0 / 20.0) * 2.0 * std::f64::consts::PI * 1000.0 / f64::from(RATE);
        assert!(y.windows(2).all(|w| f64::from((w[1] - w[0]).abs()) <= slope * 1.01));
    }
}
