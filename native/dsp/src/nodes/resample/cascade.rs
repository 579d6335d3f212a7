//! Two polyphase stages for `high` when one rate is at least three times the other: a cheap
//! 2:1 stage at the higher rate and the sharp filter at the lower pair of rates (when that pair
//! has a simple ratio, `L` and `M` at most 8).
//!
//! ```text
//! down  48k ──2:1 (wide transition)──▶ 24k ──sharp 2/3──▶ 16k
//! up    16k ──sharp 3/2──▶ 24k ──1:2 (wide transition)──▶ 48k
//! ```
//! A filter's cost per output is its length in time times the rate of the input it reads. The sharp
//! filter's length in time is set by its transition band (a few hundred Hz wide at 48k↔16k), so
//! running it against the middle rate (24k) instead of 48k halves its taps per output. The 2:1
//! stage only has to keep the passband (up to the lower Nyquist rate) flat and remove what would
//! fold into it: content in `[mid − lo/2, hi/2]` (down) or the images in `[mid − lo/2, mid + lo/2]`
//! (up). Its transition band is therefore `lo/2 .. mid − lo/2` wide, a few dozen taps; what it lets
//! through between `lo/2` and `mid/2` the sharp stage removes.
//!
//! The delay stays a whole number of output frames: the first stage's delay is rounded up to a
//! multiple of the second stage's `M` (down), and the up case's second stage doubles the rate.
//! Each stage is deterministic per output frame, so the cascade is as bit-exact under re-chunking
//! as one stage.

use super::polyphase::{ratio, Design, Polyphase};
use crate::format::MAX_CHANNELS;

/// Frames per channel between the stages.
const MID_CAP: usize = 4096;

/// Zero frames pushed per step while flushing.
const ZERO_BLOCK: usize = 256;

/// Stopband of the 2:1 stage, dB. Well above the sharp stage's: the 2:1 stage's residue lands at
/// `mid ± f` for a tone at f, which counts in THD+N (at 110 dB a 1 kHz tone's THD+N was -119 dB).
const WIDE_ATTENUATION_DB: f64 = 130.0;

/// Largest `L` or `M` of the sharp stage: beyond simple ratios a cascade saves little.
const MAX_SHARP_FACTOR: u64 = 8;

/// The two stages and the buffer between them.
pub struct Cascade {
    first: Polyphase,
    second: Polyphase,
    channels: usize,
    /// `channels` planes of `MID_CAP` frames: the first stage's output.
    mid: Vec<f32>,
    /// Input frames pushed through the first stage per step (its output then fits in `mid`).
    piece: usize,
    zeros: Vec<f32>,
    /// `(L, M)` of the whole conversion.
    factors: (usize, usize),
    delay: usize,
}

impl Cascade {
    /// The cascade for `fs_in -> fs_out` with `sharp` as the band-defining filter, or `None` when
    /// the rates are less than 3:1 apart, the higher one is odd, or a stage has no polyphase form.
    pub fn new(fs_in: u32, fs_out: u32, channels: usize, sharp: Design) -> Option<Cascade> {
        let (lo, hi) = (fs_in.min(fs_out), fs_in.max(fs_out));
        if hi % 2 != 0 || u64::from(hi) < 3 * u64::from(lo) {
            return None;
        }
        let mid = hi / 2;
        let (ls, ms) = if fs_in > fs_out { ratio(mid, fs_out) } else { ratio(fs_in, mid) };
        if ls.max(ms) > MAX_SHARP_FACTOR {
            return None;
        }
        let k = f64::from(lo) / f64::from(mid);
        // Relative to the 2:1 stage's own lower Nyquist rate (mid/2): flat to lo/2, stop from mid - lo/2.
        let wide = Design { pass: k, stop: 2.0 - k, attenuation_db: WIDE_ATTENUATION_DB };
        let (first, second, delay) = if fs_in > fs_out {
            let (l2, m2) = ratio(mid, fs_out);
            let first = Polyphase::with_delay_multiple(fs_in, mid, channels, wide, m2 as usize)?;
            let second = Polyphase::new(mid, fs_out, channels, sharp)?;
            let delay = first.delay() * l2 as usize / m2 as usize + second.delay();
            (first, second, delay)
        } else {
            let first = Polyphase::new(fs_in, mid, channels, sharp)?;
            let second = Polyphase::new(mid, fs_out, channels, wide)?;
            let delay = 2 * first.delay() + second.delay();
            (first, second, delay)
        };
        let (l1, m1) = first.factors();
        let (l, m) = ratio(fs_in, fs_out);
        Some(Cascade {
            first,
            second,
            channels,
            mid: vec![0.0; channels * MID_CAP],
            piece: ((MID_CAP - 1) * m1 / l1).max(1),
            zeros: vec![0.0; ZERO_BLOCK],
            factors: (l as usize, m as usize),
            delay,
        })
    }

    /// The group delay in output frames (exact).
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// `(L, M)` of the whole conversion.
    pub fn factors(&self) -> (usize, usize) {
        self.factors
    }

    /// The taps per output of each stage.
    pub fn taps(&self) -> (usize, usize) {
        (self.first.taps(), self.second.taps())
    }

    /// Most output frames one call of `n` input frames writes: after `N` frames the first stage has
    /// written `ceil(N·L1/M1)`, the second `ceil` of that times `L2/M2`, so a call adds at most
    /// `ceil(n·L/M)` plus the rounding of both stages.
    pub fn max_output_frames(&self, n: usize) -> usize {
        let (l, m) = self.factors;
        let (l2, m2) = self.second.factors();
        (n * l).div_ceil(m) + l2.div_ceil(m2) + 2
    }

    /// Forgets the stream.
    pub fn reset(&mut self) {
        self.first.reset();
        self.second.reset();
    }

    /// Consumes `n` frames of each plane of `input`, writes the output frames they complete into
    /// `out[c][at..]` and returns how many (at most [`Cascade::max_output_frames`]).
    pub fn process(&mut self, input: &[&[f32]], n: usize, out: &mut [&mut [f32]], at: usize) -> usize {
        let mut done = 0;
        let mut written = 0;
        while done < n {
            let take = self.piece.min(n - done);
            let mut pieces: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
            for (p, plane) in pieces.iter_mut().zip(input).take(self.channels) {
                *p = &plane[done..done + take];
            }
            written += self.step(&pieces[..self.channels], take, out, at + written, usize::MAX);
            done += take;
        }
        written
    }

    /// Input through both stages, at most `limit` frames out.
    fn step(&mut self, input: &[&[f32]], n: usize, out: &mut [&mut [f32]], at: usize, limit: usize) -> usize {
        let channels = self.channels;
        let mut mids: [&mut [f32]; MAX_CHANNELS] = Default::default();
        for (slot, plane) in mids.iter_mut().zip(self.mid.chunks_exact_mut(MID_CAP)) {
            *slot = plane;
        }
        let k = self.first.process(input, n, &mut mids[..channels], 0);
        let mut views: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
        for (slot, plane) in views.iter_mut().zip(self.mid.chunks_exact(MID_CAP)) {
            *slot = &plane[..k];
        }
        self.second.process_limited(&views[..channels], k, out, at, limit)
    }

    /// Feeds zeros until `owed` more output frames are written into `out[c][at..]` (the stream's
    /// tail), then resets.
    pub fn flush(&mut self, owed: usize, out: &mut [&mut [f32]], at: usize) {
        let mut written = self.second.drain(out, at, owed);
        let zeros = std::mem::take(&mut self.zeros);
        let planes: [&[f32]; MAX_CHANNELS] = [&zeros[..]; MAX_CHANNELS];
        while written < owed {
            written += self.step(&planes[..self.channels], ZERO_BLOCK, out, at + written, owed - written);
        }
        self.zeros = zeros;
        self.reset();
    }
}
