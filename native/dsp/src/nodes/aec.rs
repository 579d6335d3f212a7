//! `aec`: acoustic echo cancellation (docs/pipelines.md, round 2). The far-end reference (what was played to
//! the caller) arrives as one channel of the input, the near end (the caller's microphone) as
//! another; the output is the near end, mono, with the echo of the reference removed.
//!
//! ```text
//!  reference x ──▶ [partitioned FIR Ŵ ≈ room] ──▶ ŷ (echo estimate)
//!  near      d ────────────────────────────────(−)──▶ e = d − ŷ  ──▶ output
//! ```
//! The room (loudspeaker, delay, reflections, microphone) is modelled as an FIR of `tail_ms`,
//! adapted by a partitioned-block frequency-domain NLMS (overlap-save, blocks of `B` frames, FFT
//! size `2B`, `P = tail/B` partitions, the gradient constrained to `B` taps per partition so the
//! filter stays linear convolution). Each bin's step is normalised by the reference power in that
//! bin over the partitions, raised by a share of the mean over the bins so that momentarily weak
//! bins do not amplify the error leaking into them; the step is shared between the partitions
//! partly evenly, mostly in proportion to each partition's filter size (proportionate NLMS).
//!
//! Most of an echo path is its bulk delay (playout and capture buffers): the partitions before
//! it hold nothing, yet every one of them would share the step. A delay estimator
//! ([`delay`], GCC-PHAT on the spectra the filter already keeps) finds the direct path; once
//! three looks in a row (one every 8 blocks) agree, the filters start at the partition
//! half a block before it, which is what lets speech converge to 25 dB within two seconds at
//! any delay the tail covers.
//!
//! Double talk (the caller speaking over the echo) must neither be cancelled nor derail the
//! filter. Two filters run side by side: the *background* filter adapts on every block; the
//! *foreground* filter makes the output and only ever changes by copying the background when the
//! background has been cancelling clearly better (3 dB less residual, smoothed over a few
//! blocks). During double talk the caller's speech enters the background's error and disturbs it,
//! so it stops beating the foreground and the output keeps the last good filter; once the
//! background is clearly worse than the foreground it restarts from it. There is no non-linear
//! suppression: the near end is never gated or attenuated.
//!
//! Blocks are cut from the start of the stream, whatever the calls, so the output does not depend
//! on how the stream is cut. A call emits every completed block; `flush` completes the last one
//! with zeros and emits just the frames that were held. The output is not shifted
//! ([`NodeCore::latency_frames`] is 0), but answers carry whole blocks (`B` = 8 to 16 ms).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::Format;
use delay::DelayEstimator;

use crate::node::{check_range, parse_params, BlockNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "aec";

/// Blocks between two looks at the delay estimate.
const DELAY_EVERY: u64 = 8;
/// Looks in a row that must agree before the filters move to a new delay.
const AGREEMENT: u32 = 2;

/// NLMS step (0 < μ < 2 is stable). The constrained block gradient carries about half the energy
/// of the unconstrained one, so this is an effective step of about 0.5.
const STEP: f32 = 1.0;
/// Adaptation steps per block. Speech sweeps its harmonics through the bins, so a bin learns
/// only while a harmonic crosses it; a second step on the same block (data reuse) nearly halves
/// the time to converge, for twice the adaptation cost.
const PASSES: usize = 2;
/// Share of the step spread evenly over the partitions; the rest goes in proportion to each
/// partition's filter size.
const UNIFORM: f32 = 0.3;
/// Every bin's normaliser is raised by this share of the mean over the bins, so the bins where
/// the reference is momentarily weak (between harmonics, above the formants) take small steps
/// instead of amplifying the error leaking into them from their neighbours.
const SPREAD: f32 = 0.3;
/// Per-sample reference power treated as silence (-80 dBFS), regularising the normalisation.
const QUIET_POWER: f32 = 1e-8;
/// Smoothing of the per-block residual energies that steer the foreground/background choice.
const ENERGY_SMOOTHING: f32 = 0.7;
/// The background replaces the foreground when its residual is this much smaller (0.5 dB).
const COPY_RATIO: f32 = 0.9;
/// The background restarts from the foreground when its residual is this much larger (6 dB).
const RESET_RATIO: f32 = 4.0;

/// Params of `aec`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AecParams {
    /// Input channel carrying the far-end reference (what was played).
    pub reference_channel: usize,
    /// Input channel carrying the near end (the microphone).
    pub near_channel: usize,
    /// Longest echo path modelled (delay plus reverberation), 20..=1000 ms.
    pub tail_ms: f64,
}

impl Default for AecParams {
    fn default() -> Self {
        AecParams { reference_channel: 1, near_channel: 0, tail_ms: 300.0 }
    }
}

/// Frames per block at `sample_rate`: the largest power of two within 16 ms (256 at 16 kHz,
/// 512 at 48 kHz), at least 32.
pub fn block_frames(sample_rate: u32) -> usize {
    let most = (u64::from(sample_rate) * 16 / 1000).max(32) as usize;
    1 << (usize::BITS - 1 - most.leading_zeros())
}

/// A partitioned frequency-domain filter: `P` spectra of `B + 1` bins.
type Filter = Vec<Vec<Complex<f32>>>;

/// The echo canceller; see the module docs.
pub struct Aec {
    input: Format,
    params: AecParams,
    block: usize,
    partitions: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    /// The last `P` reference spectra, newest at `head`.
    history: Vec<Vec<Complex<f32>>>,
    head: usize,
    background: Filter,
    foreground: Filter,
    /// Per-bin reference power over the partitions, weighted by `gains` (the step's normaliser).
    power: Vec<f32>,
    /// Per-partition step weights of the proportionate update.
    gains: Vec<f32>,
    /// The previous reference block (the first half of the next FFT frame).
    last_reference: Vec<f32>,
    /// The previous near block (for the delay estimator's frames).
    last_near: Vec<f32>,
    /// The echo's bulk delay estimator, and the first partition the filters use: the ones
    /// before the delay hold nothing and would only slow the adaptation down.
    delay: DelayEstimator,
    first: usize,
    blocks: u64,
    /// The last estimate's first partition, and how many looks in a row have agreed on it.
    candidate: Option<usize>,
    agreed: u32,
    /// Frames of the current block gathered so far, reference and near.
    held: usize,
    reference: Vec<f32>,
    near: Vec<f32>,
    /// Smoothed residual energies of the two filters.
    residual_background: f32,
    residual_foreground: f32,
    time: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    echo: Vec<Complex<f32>>,
    error: Vec<f32>,
    scratch: Vec<Complex<f32>>,
}

impl Aec {
    /// Builds an echo canceller for `input` (at least two channels).
    pub fn new(params: &Value, input: Format) -> Result<Aec, NodeError> {
        let p: AecParams = parse_params(TYPE, params)?;
        check_range(TYPE, "tail_ms", p.tail_ms, 20.0, 1000.0)?;
        if input.channels < 2 {
            return Err(NodeError::format(TYPE, format!("needs at least 2 input channels (near end and reference), got {}", input.channels)));
        }
        for (name, c) in [("reference_channel", p.reference_channel), ("near_channel", p.near_channel)] {
            if c >= input.channels {
                return Err(NodeError::params(TYPE, format!("{name} {c}: the input has channels 0..{}", input.channels - 1)));
            }
        }
        if p.reference_channel == p.near_channel {
            return Err(NodeError::params(TYPE, "reference_channel and near_channel must differ"));
        }
        let block = block_frames(input.sample_rate);
        let tail = (p.tail_ms * f64::from(input.sample_rate) / 1000.0).ceil() as usize;
        let partitions = tail.div_ceil(block);
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(2 * block);
        let ifft = planner.plan_fft_inverse(2 * block);
        let bins = block + 1;
        let scratch_len = fft.get_scratch_len().max(ifft.get_scratch_len());
        let zeros = || vec![vec![Complex::new(0.0, 0.0); bins]; partitions];
        Ok(Aec {
            input,
            params: p,
            block,
            partitions,
            fft,
            ifft: ifft.clone(),
            history: zeros(),
            head: 0,
            background: zeros(),
            foreground: zeros(),
            power: vec![0.0; bins],
            gains: vec![1.0; partitions],
            last_reference: vec![0.0; block],
            last_near: vec![0.0; block],
            delay: DelayEstimator::new(block, partitions, ifft.clone()),
            first: 0,
            blocks: 0,
            candidate: None,
            agreed: 0,
            held: 0,
            reference: vec![0.0; block],
            near: vec![0.0; block],
            residual_background: 0.0,
            residual_foreground: 0.0,
            time: vec![0.0; 2 * block],
            spectrum: vec![Complex::new(0.0, 0.0); bins],
            echo: vec![Complex::new(0.0, 0.0); bins],
            error: vec![0.0; block],
            scratch: vec![Complex::new(0.0, 0.0); scratch_len],
        })
    }

    /// Frames per block (see [`block_frames`]).
    pub fn block(&self) -> usize {
        self.block
    }

    /// `time` (2B frames) to `spectrum`.
    fn forward(&mut self) {
        self.fft.process_with_scratch(&mut self.time, &mut self.spectrum, &mut self.scratch).expect("sizes fixed at construction");
    }

    /// `spectrum` to `time`, scaled so that `forward` then `inverse` is the identity.
    fn inverse(&mut self) {
        // realfft's inverse ignores the imaginary parts of DC and Nyquist; keep them zero anyway.
        self.spectrum[0].im = 0.0;
        self.spectrum[self.block].im = 0.0;
        self.ifft.process_with_scratch(&mut self.spectrum, &mut self.time, &mut self.scratch).expect("sizes fixed at construction");
        let k = 1.0 / (2 * self.block) as f32;
        self.time.iter_mut().for_each(|t| *t *= k);
    }

    /// The echo estimate of `filter` for the current block, into `time[B..2B]`.
    fn estimate(&mut self, foreground: bool) {
        self.echo.iter_mut().for_each(|y| *y = Complex::new(0.0, 0.0));
        let filter = if foreground { &self.foreground } else { &self.background };
        for (p, w) in filter.iter().enumerate().skip(self.first) {
            let x = &self.history[(self.head + self.partitions - p) % self.partitions];
            for ((y, w), x) in self.echo.iter_mut().zip(w).zip(x) {
                *y += w * x;
            }
        }
        self.spectrum.copy_from_slice(&self.echo);
        self.inverse();
    }

    /// Runs one complete block: `reference`/`near` in, the cleaned block into `out`.
    fn run_block(&mut self, out: &mut [f32]) {
        let b = self.block;
        // The reference spectrum of [previous block, this block] becomes partition 0.
        self.time[..b].copy_from_slice(&self.last_reference);
        self.time[b..].copy_from_slice(&self.reference);
        self.last_reference.copy_from_slice(&self.reference);
        self.forward();
        self.head = (self.head + 1) % self.partitions;
        self.history[self.head].copy_from_slice(&self.spectrum);
        self.time[..b].copy_from_slice(&self.last_near);
        self.time[b..].copy_from_slice(&self.near);
        self.last_near.copy_from_slice(&self.near);
        self.forward();
        self.delay.update(&self.spectrum, &self.history, self.head);
        self.blocks += 1;
        if self.blocks.is_multiple_of(DELAY_EVERY) {
            // A partition that ends half a block before the direct path holds no echo; the
            // filters skip to the estimate once three looks in a row agree on it.
            let start = self.delay.estimate().map(|d| (d.saturating_sub(b / 2) / b).min(self.partitions - 1));
            if start.is_some() && start == self.candidate {
                self.agreed += 1;
            } else {
                self.agreed = 0;
            }
            self.candidate = start;
            if let (Some(start), AGREEMENT) = (start, self.agreed) {
                if start != self.first {
                    self.skip_to(start);
                }
            }
        }

        // Foreground: the output.
        self.estimate(true);
        let mut energy_foreground = 0.0;
        for ((o, d), y) in out.iter_mut().zip(&self.near).zip(&self.time[b..]) {
            *o = d - y;
            energy_foreground += *o * *o;
        }
        // Background: its error drives the adaptation, [`PASSES`] steps on the same block (the
        // later ones from the error left after the earlier ones).
        let mut energy_background = 0.0;
        for pass in 0..PASSES {
            self.estimate(false);
            let mut energy = 0.0;
            for ((e, d), y) in self.error.iter_mut().zip(&self.near).zip(&self.time[b..]) {
                *e = d - y;
                energy += *e * *e;
            }
            if pass == 0 {
                energy_background = energy;
            }
            self.adapt();
        }

        let s = ENERGY_SMOOTHING;
        self.residual_foreground = s * self.residual_foreground + (1.0 - s) * energy_foreground;
        self.residual_background = s * self.residual_background + (1.0 - s) * energy_background;
        if self.residual_background < COPY_RATIO * self.residual_foreground {
            copy_filter(&mut self.foreground, &self.background);
            self.residual_foreground = self.residual_background;
        } else if self.residual_background > RESET_RATIO * self.residual_foreground {
            copy_filter(&mut self.background, &self.foreground);
            self.residual_background = self.residual_foreground;
        }
    }

    /// Starts the filters at partition `first`, clearing the ones before it.
    fn skip_to(&mut self, first: usize) {
        for filter in [&mut self.background, &mut self.foreground] {
            filter[..first].iter_mut().for_each(|p| p.fill(Complex::new(0.0, 0.0)));
        }
        self.first = first;
    }

    /// One constrained step of the background filter from `error`.
    ///
    /// Proportionate (IPNLMS, per partition): an echo path is sparse — a bulk delay, then a
    /// decaying tail — so each active partition's share of the step is [`UNIFORM`] even, the
    /// rest in proportion to its filter's size, and the per-bin normalisation weighs the
    /// reference power the same way (`Σ_p P·g_p·|X_p|²`, raised by [`SPREAD`] of its mean over
    /// the bins). With an empty filter the step is uniform (plain NLMS).
    fn adapt(&mut self) {
        let (b, parts, first) = (self.block, self.partitions, self.first);
        let active = parts - first;
        let norms: f32 = {
            let mut total = 0.0;
            for (g, w) in self.gains.iter_mut().zip(&self.background).skip(first) {
                *g = w.iter().map(|c| c.norm_sqr()).sum::<f32>().sqrt();
                total += *g;
            }
            total
        };
        for g in &mut self.gains[first..] {
            // P·g_p, mean 1 over the active partitions.
            *g = if norms > 0.0 { UNIFORM + (1.0 - UNIFORM) * active as f32 * *g / norms } else { 1.0 };
        }
        self.power.fill(QUIET_POWER * (2 * b * active) as f32);
        for p in first..parts {
            let (x, g) = (&self.history[(self.head + parts - p) % parts], self.gains[p]);
            for (d, x) in self.power.iter_mut().zip(x) {
                *d += g * x.norm_sqr();
            }
        }
        let floor = SPREAD * self.power.iter().sum::<f32>() / self.power.len() as f32;
        self.power.iter_mut().for_each(|d| *d += floor);
        self.time[..b].fill(0.0);
        self.time[b..].copy_from_slice(&self.error);
        self.forward();
        // E·μ/(Σ_p P·g_p·|X_p|² + δ), shared by every partition.
        for ((e, x), d) in self.echo.iter_mut().zip(&self.spectrum).zip(&self.power) {
            *e = *x * (STEP / d);
        }
        for p in first..parts {
            let (x, g) = (&self.history[(self.head + parts - p) % parts], self.gains[p]);
            for ((out, e), x) in self.spectrum.iter_mut().zip(&self.echo).zip(x) {
                *out = x.conj() * e * g;
            }
            // Gradient constraint: keep the first B taps of the partition's update.
            self.inverse();
            self.time[b..].fill(0.0);
            self.forward();
            for (w, g) in self.background[p].iter_mut().zip(&self.spectrum) {
                *w += *g;
            }
        }
    }
}

fn copy_filter(to: &mut Filter, from: &Filter) {
    for (t, f) in to.iter_mut().zip(from) {
        t.copy_from_slice(f);
    }
}

impl NodeCore for Aec {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        Format { channels: 1, ..self.input }
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        match name {
            // Each would change the filter's shape or what it was trained on.
            "reference_channel" | "near_channel" | "tail_ms" => {
                Err(NodeError::params(TYPE, format!("{name} cannot change live")))
            }
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {
        for f in [&mut self.history, &mut self.background, &mut self.foreground] {
            f.iter_mut().for_each(|p| p.fill(Complex::new(0.0, 0.0)));
        }
        self.power.fill(0.0);
        self.last_near.fill(0.0);
        self.delay.reset();
        self.first = 0;
        self.blocks = 0;
        self.candidate = None;
        self.agreed = 0;
        self.last_reference.fill(0.0);
        self.head = 0;
        self.held = 0;
        self.residual_background = 0.0;
        self.residual_foreground = 0.0;
    }
}

impl BlockNode for Aec {
    /// Whole blocks only: `n` new frames plus at most `B - 1` held complete at most `n/B + 1`
    /// blocks; `flush` writes at most `B - 1` frames.
    fn max_output_frames(&self, input_frames: usize) -> usize {
        (input_frames / self.block + 1) * self.block
    }

    fn process(&mut self, input: &AudioBuf, output: &mut AudioBuf, _ctx: &mut Ctx<'_>) {
        let n = input.frames();
        let b = self.block;
        output.set_shape(1, output.capacity_frames().max(self.max_output_frames(n)));
        let (reference, near) = (input.channel(self.params.reference_channel), input.channel(self.params.near_channel));
        let mut written = 0;
        let mut pos = 0;
        while pos < n {
            let take = (b - self.held).min(n - pos);
            self.reference[self.held..self.held + take].copy_from_slice(&reference[pos..pos + take]);
            self.near[self.held..self.held + take].copy_from_slice(&near[pos..pos + take]);
            self.held += take;
            pos += take;
            if self.held == b {
                self.run_block(&mut output.channel_mut(0)[written..written + b]);
                self.held = 0;
                written += b;
            }
        }
        output.set_frames(written);
    }

    fn flush(&mut self, output: &mut AudioBuf, _ctx: &mut Ctx<'_>) {
        let (b, held) = (self.block, self.held);
        output.set_shape(1, output.capacity_frames().max(b));
        if held > 0 {
            self.reference[held..].fill(0.0);
            self.near[held..].fill(0.0);
            self.run_block(&mut output.channel_mut(0)[..b]);
        }
        output.set_frames(held);
        self.reset();
    }
}

mod delay;
#[cfg(test)]
mod tests;
