//! Polyphase FIR resampling by a rational ratio `L/M` (fs_out/fs_in reduced by their gcd).
//!
//! Conceptually the input is zero-stuffed to `L·fs_in`, low-pass filtered by one long prototype
//! FIR `h` (a Kaiser-windowed sinc), and every `M`-th sample is kept. Only the taps that meet a
//! non-zero input sample are ever computed: output frame `k` sits at up-sampled time `k·M`, so with
//! `q = floor(k·M / L)` and phase `p = k·M mod L`
//!
//! ```text
//! y[k] = Σ_i  L·h[p + i·L] · x[q - i]        i = 0 .. taps_per_phase
//! ```
//!
//! The coefficients are stored phase-major, each phase's row time-reversed and zero-padded to a
//! multiple of 16, so an output frame is one contiguous dot product between a row and the last
//! `taps` input frames: 256-bit FMAs on x86-64-v3 (the release target), 512-bit ones when the CPU
//! has AVX-512F and DQ (detected at run time, once per filter). Outputs that share a row are computed
//! eight at a time, each row vector loaded once for eight FMAs.
//!
//! The prototype has odd length `2·D·M + 1`: its centre, `D·M` up-sampled samples in, is exactly
//! `D` output frames, so the delay reported as latency is exact. All bookkeeping (window position,
//! phase) is in integers: no drift however long the stream.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Largest `L` (interpolation factor) handled here; beyond it the node uses rubato.
pub const MAX_L: u64 = 512;

/// Largest coefficient table, in f32s (1 MiB); longer designs fall back to rubato.
const MAX_COEFS: usize = 1 << 18;

/// Input frames appended to the history buffer between compactions (beyond the filter window).
const CHUNK: usize = 4096;

/// Lanes of one 256-bit SIMD accumulator.
const LANES: usize = 8;
/// Rows are padded to a multiple of this: the lanes of one 512-bit accumulator, so either
/// kernel family ([`simd`] or [`simd512`]) covers a row in whole vectors.
const ROW_MULTIPLE: usize = 16;

/// The low-pass prototype of one quality preset, relative to the lower of the two Nyquist rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Design {
    /// End of the passband, as a fraction of `min(fs_in, fs_out)/2`.
    pub pass: f64,
    /// Start of the stopband, same unit.
    pub stop: f64,
    /// Stopband attenuation the Kaiser window is chosen for, in dB.
    pub attenuation_db: f64,
}

impl Design {
    /// Kaiser's β for the attenuation (Kaiser's empirical formula, valid above 50 dB).
    pub fn beta(self) -> f64 {
        let a = self.attenuation_db;
        if a > 50.0 {
            0.1102 * (a - 8.7)
        } else if a >= 21.0 {
            0.5842 * (a - 21.0).powf(0.4) + 0.07886 * (a - 21.0)
        } else {
            0.0
        }
    }
}

/// Reduces `fs_out/fs_in` to `(L, M)`.
pub fn ratio(fs_in: u32, fs_out: u32) -> (u64, u64) {
    let (a, b) = (u64::from(fs_out), u64::from(fs_in));
    let g = gcd(a, b);
    (a / g, b / g)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Modified Bessel function of the first kind, order 0 (power series; converges fast for the
/// β ≤ 15 used here).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Designs kept for reuse: each is a pure function of its key, and a node's design costs more than
/// the rest of a session's set-up (a Bessel series per tap of a prototype thousands of taps long).
/// Bounded, since sample rates come from clients: past the bound, designs are made and not kept.
const MAX_SHARED_FILTERS: usize = 64;

/// The coefficients of one design, read-only once made.
struct Filter {
    l: usize,
    m: usize,
    taps: usize,
    /// The prototype's group delay in output frames (exact).
    delay: usize,
    /// `l` rows of `taps`, phase-major, each row time-reversed (oldest input first).
    coefs: Vec<f32>,
    /// Per row: `(index, coefficient)` when the row has a single non-zero tap (the pure-delay
    /// phase of a half-band interpolator), so its outputs are one multiply, the same value the
    /// dot product gives (every other term is an exact zero).
    single: Vec<Option<(usize, f32)>>,
}

/// What a design depends on: the rates, the preset (as bits: the presets are constants) and the delay multiple.
type FilterKey = (u32, u32, [u64; 3], usize);

impl Filter {
    /// The design for these parameters: made once per process (up to [`MAX_SHARED_FILTERS`] of them)
    /// and shared by every stream that uses it.
    fn shared(fs_in: u32, fs_out: u32, design: Design, multiple: usize) -> Option<Arc<Filter>> {
        static SHARED: OnceLock<Mutex<HashMap<FilterKey, Arc<Filter>>>> = OnceLock::new();
        Filter::shared_in(SHARED.get_or_init(Default::default), fs_in, fs_out, design, multiple)
    }

    fn shared_in(
        shared: &Mutex<HashMap<FilterKey, Arc<Filter>>>,
        fs_in: u32,
        fs_out: u32,
        design: Design,
        multiple: usize,
    ) -> Option<Arc<Filter>> {
        let key = (fs_in, fs_out, [design.pass.to_bits(), design.stop.to_bits(), design.attenuation_db.to_bits()], multiple);
        if let Some(f) = shared.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Some(f.clone());
        }
        // Designed outside the lock; two streams starting together may both design it, and one keeps its own.
        let filter = Arc::new(Filter::design(fs_in, fs_out, design, multiple)?);
        let mut map = shared.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() < MAX_SHARED_FILTERS {
            map.entry(key).or_insert_with(|| filter.clone());
        }
        Some(filter)
    }

    /// `None` when the ratio does not reduce to `L <= MAX_L` or the table would exceed [`MAX_COEFS`].
    fn design(fs_in: u32, fs_out: u32, design: Design, multiple: usize) -> Option<Filter> {
        let (l, m) = ratio(fs_in, fs_out);
        if l > MAX_L || l == 0 || m == 0 {
            return None;
        }
        let (l, m) = (l as usize, m as usize);
        let nyquist = f64::from(fs_in.min(fs_out)) / 2.0;
        let fs_up = l as f64 * f64::from(fs_in);
        // Transition width and cutoff in cycles per up-sampled sample.
        let width = (design.stop - design.pass) * nyquist / fs_up;
        let cutoff = (design.pass + design.stop) / 2.0 * nyquist / fs_up;
        // Kaiser's length estimate, then rounded up so that the centre is D whole output frames.
        let min_len = ((design.attenuation_db - 7.95) / (2.285 * 2.0 * PI * width)).ceil() as usize + 1;
        let delay = (min_len - 1).div_ceil(2 * m).max(1).next_multiple_of(multiple.max(1));
        let len = 2 * delay * m + 1;
        let taps = len.div_ceil(l).div_ceil(ROW_MULTIPLE) * ROW_MULTIPLE;
        if l.checked_mul(taps)? > MAX_COEFS {
            return None;
        }

        let centre = (delay * m) as f64;
        let beta = design.beta();
        let i0_beta = bessel_i0(beta);
        let h: Vec<f64> = (0..len)
            .map(|j| {
                let t = j as f64 - centre;
                let sinc = if t == 0.0 { 2.0 * cutoff } else { (2.0 * PI * cutoff * t).sin() / (PI * t) };
                let r = t / centre;
                sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta
            })
            .collect();
        // Unity gain at DC after zero-stuffing: the taps sum to L (each phase to about 1).
        let scale = l as f64 / h.iter().sum::<f64>();
        let mut coefs = vec![0.0f32; l * taps];
        for (p, row) in coefs.chunks_exact_mut(taps).enumerate() {
            for i in 0..taps {
                if let Some(&v) = h.get(p + i * l) {
                    // A half-band prototype is exactly zero at every other tap; rounding leaves
                    // ~1e-17 there. True zeros let a one-tap row be a multiply (see `single`).
                    let c = v * scale;
                    row[taps - 1 - i] = if c.abs() < 1e-12 { 0.0 } else { c as f32 };
                }
            }
        }

        let single = coefs
            .chunks_exact(taps)
            .map(|row| {
                let mut nonzero = row.iter().enumerate().filter(|(_, c)| **c != 0.0);
                match (nonzero.next(), nonzero.next()) {
                    (Some((k, &c)), None) => Some((k, c)),
                    _ => None,
                }
            })
            .collect();
        Some(Filter { l, m, taps, delay, coefs, single })
    }
}

/// A streaming polyphase resampler for up to [`crate::format::MAX_CHANNELS`] channels.
pub struct Polyphase {
    l: usize,
    m: usize,
    /// Coefficients per phase (a multiple of [`LANES`]); also the input window of one output.
    taps: usize,
    /// The coefficients, shared by every stream of the same design ([`Filter::shared`]).
    filter: Arc<Filter>,
    /// Set when the filter is a half-band decimator (see [`HalfBand`]).
    half: Option<HalfBand>,
    /// The prototype's group delay in output frames (exact).
    delay: usize,
    channels: usize,
    /// Frames per channel in `hist`.
    cap: usize,
    /// Per-channel input history, `channels` planes of `cap` frames.
    hist: Vec<f32>,
    /// Frames held in each plane of `hist`.
    filled: usize,
    /// Offset in `hist` of the next output's window (may run past `filled` when decimating).
    pos: usize,
    /// Phase (row of `coefs`) of the next output.
    phase: usize,
    /// The 512-bit kernels ([`simd512`]) run this filter: the CPU has AVX-512F and DQ (checked once, at
    /// construction, so every output of a stream sums in the same order).
    wide: bool,
}

impl Polyphase {
    /// Designs the filter for `fs_in -> fs_out` and sizes all buffers. `None` when the ratio does
    /// not reduce to `L <= MAX_L` or the coefficient table would exceed 1 MiB.
    pub fn new(fs_in: u32, fs_out: u32, channels: usize, design: Design) -> Option<Polyphase> {
        Polyphase::with_delay_multiple(fs_in, fs_out, channels, design, 1)
    }

    /// As [`Polyphase::new`], with the delay (in output frames) rounded up to a multiple of
    /// `multiple`: a cascade needs its first stage's delay to be a whole number of frames at the
    /// final rate.
    pub fn with_delay_multiple(
        fs_in: u32,
        fs_out: u32,
        channels: usize,
        design: Design,
        multiple: usize,
    ) -> Option<Polyphase> {
        let filter = Filter::shared(fs_in, fs_out, design, multiple)?;
        let (l, m, taps, delay) = (filter.l, filter.m, filter.taps, filter.delay);
        let cap = taps + m / l + 1 + CHUNK;
        let half = HalfBand::detect(l, m, &filter.coefs, cap);
        let mut node = Polyphase {
            l,
            m,
            taps,
            filter,
            half,
            delay,
            channels,
            cap,
            hist: vec![0.0; channels * cap],
            filled: 0,
            pos: 0,
            phase: 0,
            wide: simd512::available(),
        };
        node.reset();
        Some(node)
    }

    /// The group delay in output frames.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Coefficients per phase (the dot product length of one output frame).
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// `(L, M)`: output frames per input frame is `L/M`.
    pub fn factors(&self) -> (usize, usize) {
        (self.l, self.m)
    }

    /// Forgets the stream: the history becomes `taps - 1` zero frames before input frame 0.
    pub fn reset(&mut self) {
        for c in 0..self.channels {
            self.hist[c * self.cap..c * self.cap + self.taps - 1].fill(0.0);
        }
        self.filled = self.taps - 1;
        self.pos = 0;
        self.phase = 0;
    }

    /// Drops history no future output reads, so that at least [`CHUNK`] frames fit.
    fn compact(&mut self) {
        let drop = self.pos.min(self.filled);
        if drop == 0 {
            return;
        }
        for c in 0..self.channels {
            let plane = &mut self.hist[c * self.cap..(c + 1) * self.cap];
            plane.copy_within(drop..self.filled, 0);
        }
        self.filled -= drop;
        self.pos -= drop;
    }

    /// Room for more input, compacting first when the buffer is full.
    fn room(&mut self) -> usize {
        if self.filled == self.cap {
            self.compact();
        }
        self.cap - self.filled
    }

    /// Writes every output frame the history determines, at most `limit`, into `out[c][at..]`;
    /// returns how many.
    pub(super) fn drain(&mut self, out: &mut [&mut [f32]], at: usize, limit: usize) -> usize {
        if self.wide {
            self.drain_with::<simd512::Kernels>(out, at, limit)
        } else {
            self.drain_with::<Narrow>(out, at, limit)
        }
    }

    /// [`Polyphase::drain`] with the dot products of `K`.
    fn drain_with<K: Dot>(&mut self, out: &mut [&mut [f32]], at: usize, limit: usize) -> usize {
        let (l, m, taps) = (self.l, self.m, self.taps);
        if self.pos + taps > self.filled {
            return 0;
        }
        // Output j (from 0) has its window at pos + floor((phase + j·M)/L); it is ready while that
        // window ends within `filled`: floor(...) <= spare.
        let spare = (self.filled - taps - self.pos) as u64;
        let ready = ((spare + 1) * l as u64 - self.phase as u64).div_ceil(m as u64);
        let count = ready.min(limit as u64) as usize;
        let (step_pos, step_phase) = (m / l, m % l);
        let step = |pos: &mut usize, phase: &mut usize| {
            *phase += step_phase;
            *pos += step_pos;
            if *phase >= l {
                *phase -= l;
                *pos += 1;
            }
        };
        let row = |phase: usize| &self.filter.coefs[phase * taps..(phase + 1) * taps];
        if let Some(half) = self.half.as_mut() {
            // L = 1: one class, phase 0, windows 2 frames apart from `pos`.
            for (c, plane) in out.iter_mut().enumerate().take(self.channels) {
                let hist = &self.hist[c * self.cap..c * self.cap + self.filled];
                half.run::<K>(hist, self.pos, &mut plane[at..at + count]);
            }
        } else if l == 1 || count >= 4 * l {
            // Class-major: outputs j, j + L, j + 2L, … share one row (phase) and their windows lie
            // exactly M frames apart, so four of them at a time load the row once (five loads per
            // four FMAs instead of eight).
            for (c, plane) in out.iter_mut().enumerate().take(self.channels) {
                let hist = &self.hist[c * self.cap..c * self.cap + self.filled];
                for r in 0..l.min(count) {
                    let advance = self.phase + r * m;
                    let (start, row) = (self.pos + advance / l, row(advance % l));
                    let n = (count - r).div_ceil(l);
                    if let Some((k, coef)) = self.filter.single[advance % l] {
                        // One check for the whole class, none per frame: with a check per frame
                        // this loop took a seventh of 16k->48k `high` (n >= 1 since r < count).
                        let (src, dst) = (start + k, at + r);
                        assert!(src + (n - 1) * m < hist.len() && dst + (n - 1) * l < plane.len());
                        for j in 0..n {
                            // SAFETY: j < n, so both indices are within the bounds asserted above.
                            unsafe { *plane.get_unchecked_mut(dst + j * l) = coef * *hist.get_unchecked(src + j * m) };
                        }
                        continue;
                    }
                    K::class(Class { row, hist, start, step: m, n }, plane, at + r, l);
                }
            }
        } else {
            for (c, plane) in out.iter_mut().enumerate().take(self.channels) {
                let hist = &self.hist[c * self.cap..c * self.cap + self.filled];
                let (mut pos, mut phase) = (self.pos, self.phase);
                let mut quads = plane[at..at + count].chunks_exact_mut(4);
                // Four outputs at a time: four independent accumulator chains keep the FMA units busy.
                for ys in &mut quads {
                    let mut rows = [&[][..]; 4];
                    let mut wins = [&[][..]; 4];
                    for j in 0..4 {
                        rows[j] = row(phase);
                        wins[j] = &hist[pos..pos + taps];
                        step(&mut pos, &mut phase);
                    }
                    ys.copy_from_slice(&K::dot4(rows, wins));
                }
                for y in quads.into_remainder() {
                    *y = K::dot(row(phase), &hist[pos..pos + taps]);
                    step(&mut pos, &mut phase);
                }
            }
        }
        let advance = self.phase as u64 + count as u64 * m as u64;
        self.pos += (advance / l as u64) as usize;
        self.phase = (advance % l as u64) as usize;
        count
    }

    /// Consumes `n` frames of each plane of `input`, writes the output frames they complete into
    /// `out[c][at..]` and returns how many. `out` planes must hold `ceil(n·L/M)` frames past `at`.
    pub fn process(&mut self, input: &[&[f32]], n: usize, out: &mut [&mut [f32]], at: usize) -> usize {
        self.process_limited(input, n, out, at, usize::MAX)
    }

    /// As [`Polyphase::process`], but stops once `limit` frames are written (the input left
    /// over is dropped: only a stream's flush, which resets afterwards, asks for this).
    pub(super) fn process_limited(
        &mut self,
        input: &[&[f32]],
        n: usize,
        out: &mut [&mut [f32]],
        at: usize,
        limit: usize,
    ) -> usize {
        let mut done = 0;
        let mut written = 0;
        while done < n && written < limit {
            let take = self.room().min(n - done);
            for (c, plane) in input.iter().enumerate().take(self.channels) {
                let start = c * self.cap + self.filled;
                self.hist[start..start + take].copy_from_slice(&plane[done..done + take]);
            }
            self.filled += take;
            done += take;
            written += self.drain(out, at + written, limit - written);
        }
        written
    }

    /// Feeds zeros until `owed` more output frames are written into `out[c][at..]` (the stream's
    /// tail), then resets.
    pub fn flush(&mut self, owed: usize, out: &mut [&mut [f32]], at: usize) {
        let mut written = self.drain(out, at, owed);
        while written < owed {
            let take = self.room().min(self.taps);
            for c in 0..self.channels {
                let start = c * self.cap + self.filled;
                self.hist[start..start + take].fill(0.0);
            }
            self.filled += take;
            written += self.drain(out, at + written, owed - written);
        }
        self.reset();
    }
}

/// A 2:1 decimator whose row is a half-band filter: apart from the centre tap, every other
/// coefficient is an exact zero, so an output is the dot product of the non-zero half with every
/// other input frame plus one multiply. The frames are split by parity into `frames` first
/// (contiguous for the SIMD kernels): half the multiplies of the full row, and the same sum of non-zero terms.
struct HalfBand {
    /// The row's coefficients at the dense parity (`taps / 2` of them, a multiple of 16).
    dense: Vec<f32>,
    /// Parity of the dense taps within the row.
    parity: usize,
    /// The centre tap: its index in the row and its coefficient.
    centre: (usize, f32),
    /// The frames of the windows being computed, even and odd ones in two halves (no allocation
    /// per call).
    frames: Vec<f32>,
}

impl HalfBand {
    /// The half-band form of a filter, when it has one: `L/M = 1/2` and a row with one non-zero
    /// tap at one parity, at least one at the other, whose half is a whole number of 512-bit vectors.
    fn detect(l: usize, m: usize, coefs: &[f32], cap: usize) -> Option<HalfBand> {
        let taps = coefs.len();
        if l != 1 || m != 2 || !taps.is_multiple_of(2 * ROW_MULTIPLE) {
            return None;
        }
        let nonzero = |parity: usize| coefs.iter().enumerate().skip(parity).step_by(2).filter(|(_, c)| **c != 0.0);
        let (centre, parity) = (0..2).find_map(|parity| {
            let mut at = nonzero(1 - parity);
            match (at.next(), at.next(), nonzero(parity).next()) {
                (Some((k, &c)), None, Some(_)) => Some(((k, c), parity)),
                _ => None,
            }
        })?;
        let dense = coefs.iter().skip(parity).step_by(2).copied().collect();
        // A drain computes at most cap/2 + 1 outputs (M = 2), their windows span
        // 2·(outputs - 1) + taps frames: two planes of that half.
        let frames = vec![0.0; 2 * (cap / 2 + 1 + taps / 2)];
        Some(HalfBand { dense, parity, centre, frames })
    }

    /// Writes `out.len()` outputs whose windows start at `start`, `start + 2`, … of `hist`.
    fn run<K: Dot>(&mut self, hist: &[f32], start: usize, out: &mut [f32]) {
        let n = out.len();
        if n == 0 {
            return;
        }
        // The windows' frames split by parity (a loop LLVM turns into shuffles): frame
        // `start + 2t + q` is `planes[q][t]`.
        let len = n - 1 + self.dense.len();
        let plane = self.frames.len() / 2;
        let (even, odd) = self.frames.split_at_mut(plane);
        let (even, odd) = (&mut even[..len], &mut odd[..len]);
        for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(hist[start..start + 2 * len].chunks_exact(2)) {
            *e = pair[0];
            *o = pair[1];
        }
        let (dense, other) = if self.parity == 0 { (&*even, &*odd) } else { (&*odd, &*even) };
        K::class(Class { row: &self.dense, hist: dense, start: 0, step: 1, n }, out, 0, 1);
        let (k, c) = self.centre;
        for (y, x) in out.iter_mut().zip(&other[k / 2..k / 2 + n]) {
            *y += c * x;
        }
    }
}

/// One class of outputs sharing a coefficient row: `n` windows of `hist`, the first at `start`,
/// each `step` frames after the previous one.
#[derive(Clone, Copy)]
struct Class<'a> {
    row: &'a [f32],
    hist: &'a [f32],
    start: usize,
    step: usize,
    n: usize,
}

/// One family of dot-product kernels. Within a family every output is summed in the same order
/// whichever of its kernels computes it, so where a block ends never shows in the output.
trait Dot {
    /// `Σ a[i]·b[i]` for equal lengths that are a multiple of [`ROW_MULTIPLE`].
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// Four dot products `rows[j]·wins[j]` in lockstep.
    fn dot4(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4];
    /// Four dot products of one `row` with four windows.
    fn dot4_row(row: &[f32], wins: [&[f32]; 4]) -> [f32; 4];
    /// Eight dot products of one `row` with eight windows (one row load feeds eight FMAs).
    fn dot8_row(row: &[f32], wins: [&[f32]; 8]) -> [f32; 8];

    /// One [`Class`] of outputs: `out[first + j·stride] = row · hist[start + j·step..][..taps]` for
    /// `j` in `0..n`, eight at a time, then four, then one, each summed as [`Dot::dot`] sums it.
    fn class(class: Class<'_>, out: &mut [f32], first: usize, stride: usize) {
        let Class { row, hist, start, step, n } = class;
        let taps = row.len();
        let win = |j: usize| &hist[start + j * step..start + j * step + taps];
        let mut j = 0;
        while j + 8 <= n {
            let ys = Self::dot8_row(row, std::array::from_fn(|i| win(j + i)));
            for (i, y) in ys.into_iter().enumerate() {
                out[first + (j + i) * stride] = y;
            }
            j += 8;
        }
        while j + 4 <= n {
            let ys = Self::dot4_row(row, [win(j), win(j + 1), win(j + 2), win(j + 3)]);
            for (i, y) in ys.into_iter().enumerate() {
                out[first + (j + i) * stride] = y;
            }
            j += 4;
        }
        for j in j..n {
            out[first + j * stride] = Self::dot(row, win(j));
        }
    }
}

/// The 256-bit family (AVX2/FMA when compiled for it, else portable).
struct Narrow;

impl Dot for Narrow {
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
    #[inline]
    fn dot4(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4] {
        dot4(rows, wins)
    }
    #[inline]
    fn dot4_row(row: &[f32], wins: [&[f32]; 4]) -> [f32; 4] {
        dot4_row(row, wins)
    }
    #[inline]
    fn dot8_row(row: &[f32], wins: [&[f32]; 8]) -> [f32; 8] {
        dot8_row(row, wins)
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
    #[inline]
    fn class(class: Class<'_>, out: &mut [f32], first: usize, stride: usize) {
        simd::class(class, out, first, stride);
    }
}

/// AVX-512F/DQ kernels, chosen at run time (a filter checks once, at construction). Sixteen lanes
/// per accumulator: half the instructions of the 256-bit family per output.
#[cfg(target_arch = "x86_64")]
mod simd512 {
    use std::arch::x86_64::{
        __m256, __m512, _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_permute2f128_ps,
        _mm256_permutevar8x32_ps, _mm256_setr_epi32, _mm256_shuffle_ps, _mm256_storeu_ps, _mm512_castps512_ps256,
        _mm512_extractf32x8_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_setzero_ps, _mm_add_ps, _mm_add_ss,
        _mm_cvtss_f32, _mm_movehdup_ps, _mm_movehl_ps,
    };

    const LANES: usize = 16;

    /// Whether this CPU runs these kernels.
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq")
    }

    /// The family; used only by filters built where [`available`] said yes.
    pub struct Kernels;

    /// The 256-bit half sum `lo + hi` of one accumulator: the first step of every reduction.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn halves(v: __m512) -> __m256 {
        _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v))
    }

    /// The sum of one accumulator's lanes, in a fixed order: halves (8 lanes), then the two
    /// 128-bit quarters (4), then lanes `0 + 2` and `1 + 3` (2), then those two. [`hsum8`] sums
    /// eight accumulators in exactly this order, so either gives the same bits for an output.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn hsum(v: __m512) -> f32 {
        let a = halves(v);
        let b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let c = _mm_add_ps(b, _mm_movehl_ps(b, b));
        _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)))
    }

    /// [`hsum`] of eight accumulators at once (transposing as it goes: 38 instructions instead
    /// of eight reductions of eight).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn hsum8(acc: &[__m512; 8]) -> [f32; 8] {
        let y: [__m256; 8] = std::array::from_fn(|j| halves(acc[j]));
        // [lo128(Y_j) + hi128(Y_j), same for Y_j+1]: B_j and B_j+1 in one register.
        let pair = |a: __m256, b: __m256| {
            _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(a, b), _mm256_permute2f128_ps::<0x31>(a, b))
        };
        let (r01, r23, r45, r67) = (pair(y[0], y[1]), pair(y[2], y[3]), pair(y[4], y[5]), pair(y[6], y[7]));
        // C_j = [B_j0 + B_j2, B_j1 + B_j3]: low halves hold j = 0, 2 (or 4, 6), high halves 1, 3.
        let c = |a: __m256, b: __m256| {
            _mm256_add_ps(_mm256_shuffle_ps::<0b01_00_01_00>(a, b), _mm256_shuffle_ps::<0b11_10_11_10>(a, b))
        };
        let (w0, w1) = (c(r01, r23), c(r45, r67));
        // D_j = C_j0 + C_j1: lanes [D0, D2, D4, D6, D1, D3, D5, D7].
        let d = _mm256_add_ps(_mm256_shuffle_ps::<0b10_00_10_00>(w0, w1), _mm256_shuffle_ps::<0b11_01_11_01>(w0, w1));
        let ordered = _mm256_permutevar8x32_ps(d, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds eight f32s.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), ordered) };
        out
    }

    /// `N` dot products of one `row` with `N` windows (`N` FMA chains).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn dot_row<const N: usize>(row: &[f32], wins: [&[f32]; N]) -> [f32; N] {
        let n = row.len();
        assert!(n.is_multiple_of(LANES) && wins.iter().all(|s| s.len() == n));
        let mut acc = [_mm512_setzero_ps(); N];
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n, the length of every slice.
            unsafe {
                let r = _mm512_loadu_ps(row.as_ptr().add(i));
                for j in 0..N {
                    acc[j] = _mm512_fmadd_ps(r, _mm512_loadu_ps(wins[j].as_ptr().add(i)), acc[j]);
                }
            }
            i += LANES;
        }
        let mut out = [0.0; N];
        if N == 8 {
            out.copy_from_slice(&hsum8(&[acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]]));
        } else {
            for j in 0..N {
                out[j] = hsum(acc[j]);
            }
        }
        out
    }

    /// The accumulators of `N` dot products of the `taps` floats at `row` with windows at `win`,
    /// `win + step`, …: lane for lane the FMAs of [`dot_row`], so reducing them as it does gives
    /// the same bits.
    ///
    /// # Safety
    /// `taps` is a multiple of 16; `row` and every window `win + j·step` (`j < N`) are readable
    /// for `taps` floats.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    unsafe fn accumulate<const N: usize>(row: *const f32, taps: usize, win: *const f32, step: usize) -> [__m512; N] {
        let mut acc = [_mm512_setzero_ps(); N];
        let mut i = 0;
        while i < taps {
            // SAFETY: i + 16 <= taps, within every slice (the caller's promise).
            unsafe {
                let r = _mm512_loadu_ps(row.add(i));
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(r, _mm512_loadu_ps(win.add(j * step + i)), *a);
                }
            }
            i += LANES;
        }
        acc
    }

    /// [`super::Dot::class`] in one call: no window slices built, no bounds checks inside.
    #[target_feature(enable = "avx512f,avx512dq")]
    fn class_avx512(class: super::Class<'_>, out: &mut [f32], first: usize, stride: usize) {
        let super::Class { row, hist, start, step, n } = class;
        let taps = row.len();
        if n == 0 {
            return;
        }
        // Every window and every output slot the loops below touch lies inside its slice.
        assert!(taps.is_multiple_of(LANES) && start + (n - 1) * step + taps <= hist.len());
        assert!(first + (n - 1) * stride < out.len());
        let (r, o) = (row.as_ptr(), out.as_mut_ptr());
        // SAFETY: by the asserts, windows `j < n` and outputs `j < n` are in bounds.
        unsafe {
            let h = hist.as_ptr().add(start);
            let mut j = 0;
            while j + 8 <= n {
                let ys = hsum8(&accumulate::<8>(r, taps, h.add(j * step), step));
                for (i, y) in ys.into_iter().enumerate() {
                    *o.add(first + (j + i) * stride) = y;
                }
                j += 8;
            }
            while j + 4 <= n {
                let acc = accumulate::<4>(r, taps, h.add(j * step), step);
                for (i, a) in acc.into_iter().enumerate() {
                    *o.add(first + (j + i) * stride) = hsum(a);
                }
                j += 4;
            }
            while j < n {
                *o.add(first + j * stride) = hsum(accumulate::<1>(r, taps, h.add(j * step), step)[0]);
                j += 1;
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn dot4_avx512(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4] {
        let n = rows[0].len();
        assert!(n.is_multiple_of(LANES) && rows.iter().chain(&wins).all(|s| s.len() == n));
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for j in 0..4 {
                // SAFETY: i + 16 <= n, the length of every slice.
                unsafe {
                    let (r, w) = (_mm512_loadu_ps(rows[j].as_ptr().add(i)), _mm512_loadu_ps(wins[j].as_ptr().add(i)));
                    acc[j] = _mm512_fmadd_ps(r, w, acc[j]);
                }
            }
            i += LANES;
        }
        [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])]
    }

    // SAFETY (every call below): `Kernels` is used only by filters whose construction found
    // AVX-512F and AVX-512DQ on this CPU.
    impl super::Dot for Kernels {
        #[inline]
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            unsafe { dot_row::<1>(a, [b])[0] }
        }
        #[inline]
        fn dot4(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4] {
            unsafe { dot4_avx512(rows, wins) }
        }
        #[inline]
        fn dot4_row(row: &[f32], wins: [&[f32]; 4]) -> [f32; 4] {
            unsafe { dot_row::<4>(row, wins) }
        }
        #[inline]
        fn dot8_row(row: &[f32], wins: [&[f32]; 8]) -> [f32; 8] {
            unsafe { dot_row::<8>(row, wins) }
        }
        #[inline]
        fn class(class: super::Class<'_>, out: &mut [f32], first: usize, stride: usize) {
            unsafe { class_avx512(class, out, first, stride) }
        }
    }
}

/// Elsewhere there are no 512-bit kernels: every filter runs [`Narrow`].
#[cfg(not(target_arch = "x86_64"))]
mod simd512 {
    pub fn available() -> bool {
        false
    }
    pub type Kernels = super::Narrow;
}

/// Scalar dot products: the fallback for targets without AVX2/FMA, and the tests' reference.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"), allow(dead_code))]
mod portable {
    use super::LANES;

    /// `Σ a[i]·b[i]`, eight partial sums.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        acc.iter().sum()
    }

    /// Four dot products `rows[j]·wins[j]`.
    pub fn dot4(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4] {
        [0, 1, 2, 3].map(|j| dot(rows[j], wins[j]))
    }

    /// Four dot products of one `row` with four windows.
    pub fn dot4_row(row: &[f32], wins: [&[f32]; 4]) -> [f32; 4] {
        wins.map(|w| dot(row, w))
    }

    /// Eight dot products of one `row` with eight windows.
    pub fn dot8_row(row: &[f32], wins: [&[f32]; 8]) -> [f32; 8] {
        wins.map(|w| dot(row, w))
    }
}

/// AVX2/FMA dot products, compiled when the target has them (x86-64-v3, the release config).
///
/// LLVM does auto-vectorise a single `[f32; 8]`-accumulator loop, but then one FMA chain bounds
/// it by latency; with four chains (four outputs in lockstep) its SLP vectoriser falls back to
/// 2-lane vectors, six times slower in a micro-benchmark than these explicit 256-bit FMAs.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
mod simd {
    use super::LANES;
    use std::arch::x86_64::{
        __m256, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
        _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehdup_ps, _mm_movehl_ps,
    };

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// One FMA chain, in the same order as each lane of `dot4_avx`/`dot4_row_avx`: an output is
    /// bit for bit the same whichever kernel computes it, so block boundaries never show.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot_avx(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        assert!(n.is_multiple_of(LANES) && b.len() == n);
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n, the length of both slices.
            unsafe {
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc);
            }
            i += LANES;
        }
        hsum(acc)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot4_avx(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4] {
        let n = rows[0].len();
        assert!(n.is_multiple_of(LANES) && rows.iter().chain(&wins).all(|s| s.len() == n));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for j in 0..4 {
                // SAFETY: i + 8 <= n, the length of every slice.
                unsafe {
                    let (r, w) = (_mm256_loadu_ps(rows[j].as_ptr().add(i)), _mm256_loadu_ps(wins[j].as_ptr().add(i)));
                    acc[j] = _mm256_fmadd_ps(r, w, acc[j]);
                }
            }
            i += LANES;
        }
        [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])]
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot4_row_avx(row: &[f32], wins: [&[f32]; 4]) -> [f32; 4] {
        let n = row.len();
        assert!(n.is_multiple_of(LANES) && wins.iter().all(|s| s.len() == n));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n, the length of every slice.
            unsafe {
                let r = _mm256_loadu_ps(row.as_ptr().add(i));
                for j in 0..4 {
                    acc[j] = _mm256_fmadd_ps(r, _mm256_loadu_ps(wins[j].as_ptr().add(i)), acc[j]);
                }
            }
            i += LANES;
        }
        [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])]
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot8_row_avx(row: &[f32], wins: [&[f32]; 8]) -> [f32; 8] {
        let n = row.len();
        assert!(n.is_multiple_of(LANES) && wins.iter().all(|s| s.len() == n));
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n, the length of every slice.
            unsafe {
                let r = _mm256_loadu_ps(row.as_ptr().add(i));
                for j in 0..8 {
                    acc[j] = _mm256_fmadd_ps(r, _mm256_loadu_ps(wins[j].as_ptr().add(i)), acc[j]);
                }
            }
            i += LANES;
        }
        [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3]), hsum(acc[4]), hsum(acc[5]), hsum(acc[6]), hsum(acc[7])]
    }

    /// As `dot8_row_avx` and its smaller siblings, for windows `step` floats apart from `win`.
    ///
    /// # Safety
    /// `taps` is a multiple of 8; `row` and every window `win + j·step` (`j < N`) are readable for
    /// `taps` floats.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn accumulate<const N: usize>(row: *const f32, taps: usize, win: *const f32, step: usize) -> [__m256; N] {
        let mut acc = [_mm256_setzero_ps(); N];
        let mut i = 0;
        while i < taps {
            // SAFETY: i + 8 <= taps, within every slice (the caller's promise).
            unsafe {
                let r = _mm256_loadu_ps(row.add(i));
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(r, _mm256_loadu_ps(win.add(j * step + i)), *a);
                }
            }
            i += LANES;
        }
        acc
    }

    #[target_feature(enable = "avx2,fma")]
    fn class_avx(class: super::Class<'_>, out: &mut [f32], first: usize, stride: usize) {
        let super::Class { row, hist, start, step, n } = class;
        let taps = row.len();
        if n == 0 {
            return;
        }
        // Every window and every output slot the loops below touch lies inside its slice.
        assert!(taps.is_multiple_of(LANES) && start + (n - 1) * step + taps <= hist.len());
        assert!(first + (n - 1) * stride < out.len());
        let (r, o) = (row.as_ptr(), out.as_mut_ptr());
        // SAFETY: by the asserts, windows `j < n` and outputs `j < n` are in bounds.
        unsafe {
            let h = hist.as_ptr().add(start);
            let mut j = 0;
            while j + 8 <= n {
                let acc = accumulate::<8>(r, taps, h.add(j * step), step);
                for (i, a) in acc.into_iter().enumerate() {
                    *o.add(first + (j + i) * stride) = hsum(a);
                }
                j += 8;
            }
            while j < n {
                *o.add(first + j * stride) = hsum(accumulate::<1>(r, taps, h.add(j * step), step)[0]);
                j += 1;
            }
        }
    }

    /// One class of outputs in one call (see `Dot::class`).
    #[inline]
    pub fn class(class: super::Class<'_>, out: &mut [f32], first: usize, stride: usize) {
        // SAFETY: as in `dot`.
        unsafe { class_avx(class, out, first, stride) }
    }

    /// `Σ a[i]·b[i]` for equal lengths that are a multiple of 8.
    #[inline]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: this module is compiled only when the target has AVX2 and FMA.
        unsafe { dot_avx(a, b) }
    }

    /// Four dot products `rows[j]·wins[j]` in lockstep (four independent FMA chains).
    #[inline]
    pub fn dot4(rows: [&[f32]; 4], wins: [&[f32]; 4]) -> [f32; 4] {
        // SAFETY: as in `dot`.
        unsafe { dot4_avx(rows, wins) }
    }

    /// Four dot products of one `row` with four windows, each row vector loaded once.
    #[inline]
    pub fn dot4_row(row: &[f32], wins: [&[f32]; 4]) -> [f32; 4] {
        // SAFETY: as in `dot`.
        unsafe { dot4_row_avx(row, wins) }
    }

    /// Eight dot products of one `row` with eight windows (one row load feeds eight FMAs).
    #[inline]
    pub fn dot8_row(row: &[f32], wins: [&[f32]; 8]) -> [f32; 8] {
        // SAFETY: as in `dot`.
        unsafe { dot8_row_avx(row, wins) }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
use simd::{dot, dot4, dot4_row, dot8_row};

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")))]
use portable::{dot, dot4, dot4_row, dot8_row};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_design_share_its_coefficients() {
        let design = Design { pass: 0.8, stop: 1.0, attenuation_db: 90.0 };
        let a = Polyphase::new(48_000, 16_000, 1, design).unwrap();
        let b = Polyphase::new(48_000, 16_000, 2, design).unwrap();
        assert!(Arc::ptr_eq(&a.filter, &b.filter));
        let reverse = Polyphase::new(16_000, 48_000, 1, design).unwrap();
        let sharper = Polyphase::new(48_000, 16_000, 1, Design { attenuation_db: 100.0, ..design }).unwrap();
        let delayed = Polyphase::with_delay_multiple(48_000, 16_000, 1, design, 7).unwrap();
        for other in [&reverse, &sharper, &delayed] {
            assert!(!Arc::ptr_eq(&a.filter, &other.filter));
        }
        assert_eq!(delayed.delay() % 7, 0);
    }

    #[test]
    fn designs_past_the_bound_are_made_and_not_kept() {
        let design = Design { pass: 0.8, stop: 1.0, attenuation_db: 90.0 };
        let map = Mutex::new(HashMap::new());
        let rate = |k: usize| 8_000 * (1 + k as u32 % 12);
        let designs: Vec<_> =
            (0..2 * MAX_SHARED_FILTERS).map(|k| Filter::shared_in(&map, 48_000, rate(k), design, 1 + k / 12).unwrap()).collect();
        assert_eq!(map.lock().unwrap().len(), MAX_SHARED_FILTERS);
        let again = |k: usize| Filter::shared_in(&map, 48_000, rate(k), design, 1 + k / 12).unwrap();
        assert!(Arc::ptr_eq(&designs[0], &again(0)));
        let last = designs.len() - 1;
        assert!(!Arc::ptr_eq(&designs[last], &again(last)));
        assert_eq!(designs[last].coefs, again(last).coefs);
    }

    #[test]
    fn ratios_reduce() {
        assert_eq!(ratio(48_000, 16_000), (1, 3));
        assert_eq!(ratio(16_000, 48_000), (3, 1));
        assert_eq!(ratio(44_100, 48_000), (160, 147));
        assert_eq!(ratio(22_050, 16_000), (320, 441));
    }

    #[test]
    fn bessel_matches_known_values() {
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-15);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-12);
        assert!((bessel_i0(10.0) - 2_815.716_628_466_254).abs() < 1e-8);
    }

    #[test]
    fn kernels_match_the_portable_ones() {
        let a: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..64).map(|i| (i as f32 * 0.11).cos()).collect();
        let close = |x: [f32; 4], y: [f32; 4]| x.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-5);
        assert!(close(dot4([&a[..], &b, &a, &b], [&b[..], &a, &a, &b]), portable::dot4([&a[..], &b, &a, &b], [&b[..], &a, &a, &b])));
        assert!(close(dot4_row(&a, [&b[..], &a, &b, &a]), portable::dot4_row(&a, [&b[..], &a, &b, &a])));
    }

    #[test]
    fn wide_kernels_agree_with_a_plain_sum_and_with_each_other() {
        if !simd512::available() {
            return;
        }
        type K = simd512::Kernels;
        for n in [16, 32, 208] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            let one = K::dot(&a, &b);
            assert!((f64::from(one) - plain).abs() < 1e-5, "n {n}");
            // Bit for bit across the family.
            assert_eq!(K::dot4([&a[..], &b, &a, &b], [&b[..], &a, &a, &b])[0].to_bits(), one.to_bits());
            assert_eq!(K::dot4_row(&a, [&a[..], &b, &a, &a])[1].to_bits(), one.to_bits());
            assert_eq!(K::dot8_row(&a, [&a[..], &a, &a, &a, &a, &a, &b, &a])[6].to_bits(), one.to_bits());
        }
    }

    /// A class computed in one call equals its outputs computed one by one, bit for bit, in
    /// both families (where a block ends decides which path an output takes).
    fn class_matches_single_dots<K: Dot>() {
        let taps = 48;
        let hist: Vec<f32> = (0..400).map(|i| (i as f32 * 0.37).sin()).collect();
        let row: Vec<f32> = (0..taps).map(|i| (i as f32 * 0.11).cos() / 7.0).collect();
        for (step, n, stride) in [(1, 17, 1), (2, 13, 3), (3, 8, 2), (3, 5, 1), (2, 1, 2)] {
            let mut out = vec![f32::NAN; n * stride + 2];
            K::class(Class { row: &row, hist: &hist, start: 5, step, n }, &mut out, 1, stride);
            for j in 0..n {
                let want = K::dot(&row, &hist[5 + j * step..5 + j * step + taps]);
                assert_eq!(out[1 + j * stride].to_bits(), want.to_bits(), "step {step} n {n} j {j}");
            }
        }
    }

    #[test]
    fn class_kernels_match_single_dots() {
        class_matches_single_dots::<Narrow>();
        if simd512::available() {
            class_matches_single_dots::<simd512::Kernels>();
        }
    }

    #[test]
    fn a_half_band_decimator_skips_its_zero_taps_and_computes_the_same() {
        // The 2:1 stage of `high` at 48k -> 16k: flat to 8 kHz, stopband from 16 kHz (symmetric
        // about 12 kHz, a half-band filter).
        let design = Design { pass: 2.0 / 3.0, stop: 4.0 / 3.0, attenuation_db: 130.0 };
        let mut fast = Polyphase::new(48_000, 24_000, 1, design).unwrap();
        let mut full = Polyphase::new(48_000, 24_000, 1, design).unwrap();
        let half = fast.half.as_ref().expect("a half-band decimator");
        assert_eq!(half.dense.len() * 2, fast.taps());
        full.half = None;
        let x: Vec<f32> = (0..9_000).map(|i| (i as f32 * 0.37).sin() * 0.5 + (i as f32 * 0.051).cos() * 0.3).collect();
        let (mut a, mut b) = (vec![0.0; 4_600], vec![0.0; 4_600]);
        let (mut na, mut nb) = (0, 0);
        for piece in x.chunks(960) {
            na += fast.process(&[piece], piece.len(), &mut [&mut a[..]], na);
            nb += full.process(&[piece], piece.len(), &mut [&mut b[..]], nb);
        }
        assert_eq!(na, nb);
        let worst = a[..na].iter().zip(&b[..nb]).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "half-band differs from the full row by {worst}");
        // Not every 2:1 filter is half-band: a passband to 0.7 of Nyquist is not symmetric about fs/4.
        let plain = Design { pass: 0.7, stop: 1.0, attenuation_db: 75.0 };
        assert!(Polyphase::new(32_000, 16_000, 1, plain).unwrap().half.is_none());
    }

    #[test]
    fn dot_matches_a_plain_sum() {
        for n in [8, 16, 24, 200] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-5, "n {n}");
            let four = dot4([&a[..], &b, &a, &b], [&b[..], &a, &a, &b]);
            let row = dot4_row(&a, [&b[..], &b, &a, &a]);
            assert!((f64::from(four[0]) - plain).abs() < 1e-5 && (f64::from(four[1]) - plain).abs() < 1e-5);
            assert!((f64::from(row[1]) - plain).abs() < 1e-5 && (row[2] - four[2]).abs() < 1e-5);
            // Bit for bit: which kernel computes an output depends on where a block ends.
            assert_eq!(four[0].to_bits(), dot(&a, &b).to_bits());
            assert_eq!(row[2].to_bits(), dot(&a, &a).to_bits());
            let eight = dot8_row(&a, [&b[..], &b, &a, &a, &b, &a, &b, &a]);
            assert_eq!(eight[1].to_bits(), dot(&a, &b).to_bits());
            assert_eq!(eight[3].to_bits(), dot(&a, &a).to_bits());
        }
    }
}
