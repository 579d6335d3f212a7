//! Shared pieces of the dynamics nodes (`normalize`, `limiter`, `noise_gate`).
//!
//! They all derive one gain per frame from the level of all channels together ("linked"), so a
//! stereo image does not wander, and apply that gain to every channel. Each pass handles at most
//! [`CHUNK`] frames so the per-frame scratch lives in fixed arrays inside the node and processing
//! never allocates.

use crate::buffer::AudioView;

/// Frames handled per pass.
pub(crate) const CHUNK: usize = 256;

/// Writes `max |x|` over all channels of frames `start..start + out.len()` into `out`.
pub(crate) fn frame_peaks(view: &AudioView<'_>, start: usize, out: &mut [f32]) {
    out.fill(0.0);
    for c in 0..view.channels() {
        let x = &view.channel(c)[start..start + out.len()];
        for (p, x) in out.iter_mut().zip(x) {
            *p = p.max(x.abs());
        }
    }
}

/// Multiplies every channel of frames `start..start + gains.len()` by the frame's gain.
pub(crate) fn apply_gains(view: &mut AudioView<'_>, start: usize, gains: &[f32]) {
    for c in 0..view.channels() {
        let x = &mut view.channel_mut(c)[start..start + gains.len()];
        for (x, g) in x.iter_mut().zip(gains) {
            *x *= g;
        }
    }
}

/// One-pole coefficient for a time constant of `ms` at `sample_rate`, in f64 (the f32 version
/// in `node` cannot resolve the slow time constants these nodes allow).
pub(crate) fn coef(ms: f64, sample_rate: u32) -> f64 {
    (-1.0 / (ms * 0.001 * f64::from(sample_rate))).exp()
}
