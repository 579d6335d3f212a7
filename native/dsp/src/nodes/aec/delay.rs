//! The echo's bulk delay, found by generalised cross-correlation with phase transform (GCC-PHAT)
//! between the near end and the reference, computed partition by partition on the spectra the
//! filter already keeps.
//!
//! For partition `p` the smoothed cross-spectrum `C_p = ⟨D_n · conj(X_{n−p})⟩` of the near frame
//! and the reference frame `p` blocks older, whitened (`C_p / |C_p|`) and brought back to time,
//! peaks at lag `τ` (−B < τ < B) when the echo arrives `p·B + τ` frames after the reference.
//! Whitening makes the peak sharp for speech, whose spectrum is far from flat; smoothing over a
//! few hundred milliseconds lets the near end's own speech (double talk), which does not
//! correlate with the reference, average out.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::ComplexToReal;

/// Weight of the past in the smoothed cross-spectra, per block (about 20 blocks of memory).
const SMOOTHING: f32 = 0.95;
/// The correlation peak must stand this many times above the correlation's RMS to be trusted.
const PROMINENCE: f32 = 10.0;

pub struct DelayEstimator {
    block: usize,
    ifft: Arc<dyn ComplexToReal<f32>>,
    /// Smoothed cross-spectra, one per partition.
    cross: Vec<Vec<Complex<f32>>>,
    spectrum: Vec<Complex<f32>>,
    norm: Vec<f32>,
    time: Vec<f32>,
    scratch: Vec<Complex<f32>>,
}

impl DelayEstimator {
    pub fn new(block: usize, partitions: usize, ifft: Arc<dyn ComplexToReal<f32>>) -> DelayEstimator {
        let bins = block + 1;
        let scratch = vec![Complex::new(0.0, 0.0); ifft.get_scratch_len()];
        DelayEstimator {
            block,
            ifft,
            cross: vec![vec![Complex::new(0.0, 0.0); bins]; partitions],
            spectrum: vec![Complex::new(0.0, 0.0); bins],
            norm: vec![0.0; bins],
            time: vec![0.0; 2 * block],
            scratch,
        }
    }

    /// Adds one block: `near` is the spectrum of the last two near blocks, `history[(head + P −
    /// p) % P]` the reference spectrum `p` blocks old.
    pub fn update(&mut self, near: &[Complex<f32>], history: &[Vec<Complex<f32>>], head: usize) {
        let parts = self.cross.len();
        for (p, c) in self.cross.iter_mut().enumerate() {
            let x = &history[(head + parts - p) % parts];
            for ((c, d), x) in c.iter_mut().zip(near).zip(x) {
                *c = *c * SMOOTHING + d * x.conj() * (1.0 - SMOOTHING);
            }
        }
    }

    /// The delay in frames, when the correlation has a clear peak.
    pub fn estimate(&mut self) -> Option<usize> {
        let b = self.block as isize;
        let (mut best, mut best_lag, mut sum_sq, mut count) = (0.0f32, 0isize, 0.0f32, 0usize);
        // Each bin is whitened by its cross-power over all partitions, so partitions that hold
        // no echo stay small instead of being blown up to the level of the one that does.
        self.norm.fill(0.0);
        for c in &self.cross {
            for (n, c) in self.norm.iter_mut().zip(c) {
                *n += c.norm_sqr();
            }
        }
        self.norm.iter_mut().for_each(|n| *n = if *n > 1e-30 { 1.0 / n.sqrt() } else { 0.0 });
        for (p, c) in self.cross.iter().enumerate() {
            for ((s, c), n) in self.spectrum.iter_mut().zip(c).zip(&self.norm) {
                *s = c * *n;
            }
            self.spectrum[0].im = 0.0;
            self.spectrum[self.block].im = 0.0;
            self.ifft.process_with_scratch(&mut self.spectrum, &mut self.time, &mut self.scratch).expect("sizes fixed at construction");
            for (i, &r) in self.time.iter().enumerate() {
                sum_sq += r * r;
                count += 1;
                // Lags of B and more are negative (circular correlation).
                let lag = p as isize * b + if (i as isize) < b { i as isize } else { i as isize - 2 * b };
                if r > best && lag >= 0 {
                    best = r;
                    best_lag = lag;
                }
            }
        }
        let rms = (sum_sq / count.max(1) as f32).sqrt();
        (best > PROMINENCE * rms).then_some(best_lag as usize)
    }

    pub fn reset(&mut self) {
        self.cross.iter_mut().for_each(|c| c.fill(Complex::new(0.0, 0.0)));
    }
}
