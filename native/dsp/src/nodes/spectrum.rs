//! `spectrum`: short-time Fourier magnitudes as events (docs/pipelines.md). Audio passes through untouched.
//!
//! ```text
//!  ring of fft_size mono samples            every `hop` frames, once full:
//!  ┌─────────────────┬─────────────────┐    oldest … newest × periodic Hann ─▶ real FFT
//!  │ … newest        │ oldest …        │    ─▶ |X[k]| in dBFS ─▶ bins, or log-spaced bands
//!  └─────────────────▲─────────────────┘    ─▶ event "spectrum" at the newest sample
//!                 ring_pos (next write)
//! ```
//!
//! Scaling: a full-scale sine centred on bin k reads 0 dBFS at bin k. A periodic Hann window of
//! length N sums to N/2 (its coherent gain is 1/2), and a sine of amplitude A puts A·ΣW/2 into
//! its bin, so bins are scaled by 2/ΣW (DC and Nyquist, which have no mirror image, by 1/ΣW).

use std::fmt;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::Format;
use crate::node::{check_range, param_uint, parse_params, AnalysisNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "spectrum";
/// Magnitudes below this read as this (dBFS).
pub const FLOOR_DB: f32 = -160.0;
/// Lowest band edge: the bottom of human hearing.
pub const LOWEST_BAND_HZ: f64 = 20.0;
/// Most bands `bands` may ask for.
pub const MAX_BANDS: usize = 512;

/// Params of `spectrum`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpectrumParams {
    /// Window and FFT length: a power of two, 256..=8192.
    pub fft_size: usize,
    /// Frames between analyses, 1..=fft_size; default fft_size/2 (50 % overlap).
    pub hop: Option<usize>,
    /// Window function; only `"hann"`.
    pub window: String,
    /// Log-spaced bands from 20 Hz to Nyquist, 0..=512; 0 sends every bin.
    pub bands: usize,
}

impl Default for SpectrumParams {
    fn default() -> Self {
        SpectrumParams { fft_size: 1024, hop: None, window: "hann".into(), bands: 32 }
    }
}

fn check_window(window: &str) -> Result<(), NodeError> {
    if window == "hann" {
        Ok(())
    } else {
        Err(NodeError::params(TYPE, format!("window = \"{window}\" is not supported; use \"hann\"")))
    }
}

/// Computes STFT frames and emits them as `spectrum` events.
pub struct Spectrum {
    format: Format,
    fft_size: usize,
    hop: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    /// Periodic Hann, precomputed.
    window: Vec<f32>,
    /// 2 / ΣW: turns |X[k]| into the amplitude of a sine on bin k.
    scale: f32,
    ring: Vec<f32>,
    /// Where the next sample goes, which is also the oldest sample once the ring is full.
    ring_pos: usize,
    /// Frames seen so far (absolute position of the next sample).
    position: u64,
    /// Absolute position of the newest sample of the next window analysed.
    next_emit: u64,
    last_emit: Option<u64>,
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Bin levels of the last analysis (dBFS), N/2+1 of them.
    bins_db: Vec<f32>,
    bands: usize,
    /// `bands + 1` edges in Hz (empty when bands = 0).
    band_edges_hz: Vec<f32>,
    /// Half-open bin range averaged for each band.
    band_bins: Vec<(usize, usize)>,
    bands_db: Vec<f32>,
}

impl Spectrum {
    /// Builds a spectrum analyser for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Spectrum, NodeError> {
        let p: SpectrumParams = parse_params(TYPE, params)?;
        let n = check_range(TYPE, "fft_size", p.fft_size, 256, 8192)?;
        if !n.is_power_of_two() {
            return Err(NodeError::params(TYPE, format!("fft_size = {n} is not a power of two")));
        }
        let hop = check_range(TYPE, "hop", p.hop.unwrap_or(n / 2), 1, n)?;
        check_window(&p.window)?;
        let bands = check_range(TYPE, "bands", p.bands, 0, MAX_BANDS)?;

        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        let window: Vec<f32> = (0..n)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32)
            .collect();
        let window_sum: f64 = window.iter().map(|&w| f64::from(w)).sum();
        let mut s = Spectrum {
            format: input,
            fft_size: n,
            hop,
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            scale: (2.0 / window_sum) as f32,
            ring: vec![0.0; n],
            ring_pos: 0,
            position: 0,
            next_emit: n as u64 - 1,
            last_emit: None,
            bins_db: vec![FLOOR_DB; n / 2 + 1],
            bands: 0,
            band_edges_hz: Vec::with_capacity(MAX_BANDS + 1),
            band_bins: Vec::with_capacity(MAX_BANDS),
            bands_db: Vec::with_capacity(MAX_BANDS),
        };
        s.set_bands(bands);
        Ok(s)
    }

    /// Lays out `bands` log-spaced bands from 20 Hz to Nyquist. Fills preallocated vectors, so a
    /// live change does not allocate.
    fn set_bands(&mut self, bands: usize) {
        self.bands = bands;
        self.band_edges_hz.clear();
        self.band_bins.clear();
        self.bands_db.clear();
        if bands == 0 {
            return;
        }
        let rate = f64::from(self.format.sample_rate);
        let nyquist = rate / 2.0;
        let bin_hz = rate / self.fft_size as f64;
        let last_bin = self.fft_size / 2;
        let edge = |i: usize| LOWEST_BAND_HZ * (nyquist / LOWEST_BAND_HZ).powf(i as f64 / bands as f64);
        for i in 0..=bands {
            self.band_edges_hz.push(edge(i) as f32);
        }
        for b in 0..bands {
            let (lo, hi) = (edge(b), edge(b + 1));
            // Bins whose centre lies in [lo, hi); the top band also takes the Nyquist bin.
            let first = (lo / bin_hz).ceil() as usize;
            let end = if b + 1 == bands { last_bin + 1 } else { ((hi / bin_hz).ceil() as usize).min(last_bin + 1) };
            let range = if first < end {
                (first, end)
            } else {
                // Narrower than a bin: the bin nearest the band's (geometric) centre.
                let k = (((lo * hi).sqrt() / bin_hz).round() as usize).min(last_bin);
                (k, k + 1)
            };
            self.band_bins.push(range);
            self.bands_db.push(FLOOR_DB);
        }
    }

    /// Windows the ring (oldest sample first), transforms it and fills `bins_db` and `bands_db`.
    fn analyse(&mut self) {
        let n = self.fft_size;
        let (newer, older) = self.ring.split_at(self.ring_pos);
        let ordered = older.iter().chain(newer.iter());
        for ((out, &x), &w) in self.fft_in.iter_mut().zip(ordered).zip(&self.window) {
            *out = x * w;
        }
        // Buffers come from the plan itself, so the lengths always match.
        let _ = self.fft.process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.scratch);
        let half = n / 2;
        for (k, (db, c)) in self.bins_db.iter_mut().zip(&self.fft_out).enumerate() {
            let scale = if k == 0 || k == half { self.scale / 2.0 } else { self.scale };
            *db = power_to_db(c.norm_sqr() * scale * scale);
        }
        for (out, &(first, end)) in self.bands_db.iter_mut().zip(&self.band_bins) {
            let power: f64 =
                self.bins_db[first..end].iter().map(|&db| 10f64.powf(f64::from(db) / 10.0)).sum::<f64>() / (end - first) as f64;
            *out = power_to_db(power as f32);
        }
    }
}

fn power_to_db(power: f32) -> f32 {
    if power > 0.0 && power.is_finite() {
        (10.0 * power.log10()).max(FLOOR_DB)
    } else if power.is_nan() {
        FLOOR_DB
    } else if power > 0.0 {
        // Infinite input: report it loud rather than as silence, but still as valid JSON.
        f32::MAX.log10() * 10.0
    } else {
        FLOOR_DB
    }
}

/// Writes `[a,b,…]` with two decimals (0.01 dB / 0.01 Hz is finer than anyone reads a spectrum).
struct List<'a>(&'a [f32]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x:.2}")?;
        }
        f.write_str("]")
    }
}

impl NodeCore for Spectrum {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        match name {
            "hop" => {
                self.hop = check_range(TYPE, "hop", param_uint(TYPE, name, value)? as usize, 1, self.fft_size)?;
                // The next window ends `hop` after the last one, or at the next sample if that
                // has already gone by; before the first window nothing changes.
                if let Some(last) = self.last_emit {
                    self.next_emit = (last + self.hop as u64).max(self.position);
                }
                Ok(())
            }
            "bands" => {
                let bands = check_range(TYPE, "bands", param_uint(TYPE, name, value)? as usize, 0, MAX_BANDS)?;
                self.set_bands(bands);
                Ok(())
            }
            "window" => check_window(value.as_str().unwrap_or("")),
            "fft_size" => Err(NodeError::params(TYPE, "fft_size cannot change live; rebuild the pipeline")),
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {
        self.ring.fill(0.0);
        self.ring_pos = 0;
        self.position = 0;
        self.next_emit = self.fft_size as u64 - 1;
        self.last_emit = None;
    }
}

impl AnalysisNode for Spectrum {
    fn analyze(&mut self, input: &AudioBuf, ctx: &mut Ctx<'_>) {
        let channels = input.channels();
        let inv = 1.0 / channels as f32;
        for i in 0..input.frames() {
            let sum: f32 = (0..channels).map(|c| input.channel(c)[i]).sum();
            self.ring[self.ring_pos] = sum * inv;
            self.ring_pos = if self.ring_pos + 1 == self.fft_size { 0 } else { self.ring_pos + 1 };
            let at = self.position;
            self.position += 1;
            if at != self.next_emit {
                continue;
            }
            self.last_emit = Some(at);
            self.next_emit = at + self.hop as u64;
            if ctx.over_budget() {
                // The event would be dropped (docs/limits.md bound): skip the transform too.
                continue;
            }
            self.analyse();
            let (n, rate) = (self.fft_size, self.format.sample_rate);
            if self.bands == 0 {
                ctx.emit(
                    "spectrum",
                    i,
                    format_args!("{{\"fft_size\":{n},\"sample_rate\":{rate},\"bins_db\":{}}}", List(&self.bins_db)),
                );
            } else {
                ctx.emit(
                    "spectrum",
                    i,
                    format_args!(
                        "{{\"fft_size\":{n},\"sample_rate\":{rate},\"bands_db\":{},\"band_edges_hz\":{}}}",
                        List(&self.bands_db),
                        List(&self.band_edges_hz)
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{analyze_in_blocks, read_fixture_audio, sine, timeline};
    use serde_json::json;
    use std::f64::consts::PI;

    fn spectrum(params: Value, rate: u32, channels: usize) -> Spectrum {
        Spectrum::new(&params, Format::new(rate, channels).unwrap()).unwrap()
    }

    /// Deterministic noise in [-1, 1) (a 64-bit LCG, fixed seed).
    fn noise(frames: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..frames)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f64 / (1u64 << 23) as f64 - 1.0) as f32
            })
            .collect()
    }

    /// |DFT| of `frame` × periodic Hann, by the definition, in f64, scaled like the node.
    fn naive_dbfs(frame: &[f32]) -> Vec<f64> {
        let n = frame.len();
        let w: Vec<f64> = (0..n).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos()).collect();
        let wsum: f64 = w.iter().sum();
        (0..=n / 2)
            .map(|k| {
                let (mut re, mut im) = (0.0, 0.0);
                for (i, (&x, &wi)) in frame.iter().zip(&w).enumerate() {
                    let ph = -2.0 * PI * (k * i % n) as f64 / n as f64;
                    re += f64::from(x) * wi * ph.cos();
                    im += f64::from(x) * wi * ph.sin();
                }
                let scale = if k == 0 || k == n / 2 { 1.0 / wsum } else { 2.0 / wsum };
                20.0 * ((re * re + im * im).sqrt() * scale).max(1e-8).log10()
            })
            .collect()
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    #[test]
    fn bins_match_a_naive_dft_of_the_windowed_frame() {
        for n in [256, 1024] {
            let x = noise(n + 300, n as u64);
            let mut s = spectrum(json!({ "fft_size": n, "hop": 100, "bands": 0 }), 48_000, 1);
            let events = analyze_in_blocks(&mut s, std::slice::from_ref(&x), 0);
            // Windows end at n-1, n+99, n+199, n+299: the last one is the final state.
            assert_eq!(events.len(), 4);
            let last = &x[300..];
            let reference = naive_dbfs(last);
            let mut worst: f64 = 0.0;
            for (k, (&got, &want)) in s.bins_db.iter().zip(&reference).enumerate() {
                let err = (f64::from(got) - want).abs();
                worst = worst.max(err);
                assert!(err < 1e-3, "n {n} bin {k}: {got} vs {want}");
            }
            println!("n {n}: worst bin error {worst:.2e} dB");
            let sent = floats(&events[3]["data"]["bins_db"]);
            assert_eq!(sent.len(), n / 2 + 1);
            for (got, want) in sent.iter().zip(&reference) {
                assert!((got - want).abs() <= 0.006, "{got} vs {want}");
            }
            assert_eq!(events[3]["data"]["fft_size"], json!(n));
            assert_eq!(events[3]["data"]["sample_rate"], json!(48_000));
        }
    }

    #[test]
    fn a_sine_on_a_bin_peaks_there_at_its_level() {
        let (n, rate) = (1024, 48_000);
        for (k, amplitude, dbfs) in [(10, 1.0, 0.0), (100, 0.5, -6.0206), (511, 0.1, -20.0)] {
            let x = sine(k as f64 * f64::from(rate) / n as f64, rate, amplitude, n);
            let mut s = spectrum(json!({ "fft_size": n, "bands": 0 }), rate, 1);
            let events = analyze_in_blocks(&mut s, &[x], 0);
            assert_eq!(events.len(), 1);
            let bins = floats(&events[0]["data"]["bins_db"]);
            let peak = bins.iter().enumerate().fold(0, |best, (i, &v)| if v > bins[best] { i } else { best });
            assert_eq!(peak, k);
            assert!((bins[k] - dbfs).abs() < 0.01, "bin {k}: {} dBFS, want {dbfs}", bins[k]);
            // Hann: the neighbours sit 6.02 dB down, the bins beyond are far below.
            assert!((bins[k - 1] - (dbfs - 6.0206)).abs() < 0.02);
            assert!(bins[k - 3] < dbfs - 60.0, "{}", bins[k - 3]);
        }
    }

    #[test]
    fn windows_are_emitted_every_hop_at_their_last_sample() {
        let x = noise(1000, 1);
        let events = analyze_in_blocks(&mut spectrum(json!({ "fft_size": 256, "hop": 100 }), 16_000, 1), std::slice::from_ref(&x), 0);
        let samples: Vec<u64> = events.iter().map(|e| e["sample"].as_u64().unwrap()).collect();
        assert_eq!(samples, vec![255, 355, 455, 555, 655, 755, 855, 955]);
        assert!(events.iter().all(|e| e["name"] == "spectrum"));
        // Default hop is half the window.
        let events = analyze_in_blocks(&mut spectrum(json!({ "fft_size": 256 }), 16_000, 1), &[x], 0);
        let samples: Vec<u64> = events.iter().map(|e| e["sample"].as_u64().unwrap()).collect();
        assert_eq!(samples, vec![255, 383, 511, 639, 767, 895]);
    }

    #[test]
    fn events_do_not_depend_on_block_size() {
        let (planes, rate) = read_fixture_audio("speech-48k-mono.wav");
        for params in [json!({}), json!({ "fft_size": 512, "hop": 301, "bands": 0 })] {
            let whole = timeline(&analyze_in_blocks(&mut spectrum(params.clone(), rate, 1), &planes, 0));
            assert!(whole.len() > 50);
            for block in [480, 960, 1776, 1, 7] {
                let cut = timeline(&analyze_in_blocks(&mut spectrum(params.clone(), rate, 1), &planes, block));
                assert_eq!(cut, whole, "{params} in blocks of {block}");
            }
        }
    }

    #[test]
    fn bands_are_log_spaced_power_averages_of_the_bins() {
        let (rate, n) = (16_000, 1024);
        let x = noise(n, 7);
        let mut by_bin = spectrum(json!({ "fft_size": n, "bands": 0 }), rate, 1);
        analyze_in_blocks(&mut by_bin, std::slice::from_ref(&x), 0);
        let mut s = spectrum(json!({ "fft_size": n, "bands": 16 }), rate, 1);
        let events = analyze_in_blocks(&mut s, &[x], 0);
        let edges = floats(&events[0]["data"]["band_edges_hz"]);
        let bands = floats(&events[0]["data"]["bands_db"]);
        assert_eq!((edges.len(), bands.len()), (17, 16));
        assert!((edges[0] - 20.0).abs() < 0.01 && (edges[16] - 8000.0).abs() < 0.01);
        let ratio = (8000.0f64 / 20.0).powf(1.0 / 16.0);
        for w in edges.windows(2) {
            assert!((w[1] / w[0] - ratio).abs() < 1e-3);
        }
        let bin_hz = f64::from(rate) / n as f64;
        for (b, &got) in bands.iter().enumerate() {
            let (lo, hi) = (edges[b], edges[b + 1]);
            let inside: Vec<usize> =
                (0..=n / 2).filter(|&k| (k as f64 * bin_hz >= lo && (k as f64 * bin_hz) < hi) || (b == 15 && k == n / 2)).collect();
            let picked = if inside.is_empty() {
                vec![((lo * hi).sqrt() / bin_hz).round() as usize]
            } else {
                inside
            };
            let power = picked.iter().map(|&k| 10f64.powf(f64::from(by_bin.bins_db[k]) / 10.0)).sum::<f64>() / picked.len() as f64;
            assert!((got - 10.0 * power.log10()).abs() < 0.01, "band {b}: {got}");
        }
    }

    #[test]
    fn a_tone_lands_in_its_band() {
        let rate = 48_000;
        let x = sine(1000.0, rate, 0.5, 4096);
        let events = analyze_in_blocks(&mut spectrum(json!({ "bands": 32 }), rate, 1), &[x], 0);
        for e in &events {
            let edges = floats(&e["data"]["band_edges_hz"]);
            let bands = floats(&e["data"]["bands_db"]);
            let loudest = bands.iter().enumerate().fold(0, |best, (i, &v)| if v > bands[best] { i } else { best });
            assert!(edges[loudest] <= 1000.0 && 1000.0 < edges[loudest + 1], "band {loudest}");
            assert!(bands[0] < -60.0, "{}", bands[0]);
        }
    }

    #[test]
    fn channels_are_averaged() {
        let x = noise(2048, 3);
        let neg: Vec<f32> = x.iter().map(|v| -v).collect();
        let events = analyze_in_blocks(&mut spectrum(json!({ "bands": 0 }), 48_000, 2), &[x, neg], 0);
        for e in &events {
            assert!(floats(&e["data"]["bins_db"]).iter().all(|&v| v == f64::from(FLOOR_DB)));
        }
    }

    #[test]
    fn params_are_validated_and_hop_and_bands_change_live() {
        let f = Format::new(48_000, 1).unwrap();
        for bad in [
            json!({ "fft_size": 1000 }),
            json!({ "fft_size": 128 }),
            json!({ "fft_size": 16384 }),
            json!({ "hop": 0 }),
            json!({ "fft_size": 256, "hop": 257 }),
            json!({ "window": "hamming" }),
            json!({ "bands": 513 }),
            json!({ "overlap": 2 }),
        ] {
            assert!(matches!(Spectrum::new(&bad, f), Err(NodeError::BadParams { .. })), "{bad}");
        }
        let mut s = spectrum(json!({ "fft_size": 256, "hop": 256 }), 48_000, 1);
        let x = noise(1000, 5);
        let mut log = crate::testing::EventLog::default();
        let mut buf = crate::testing::buf_of(&[x[..300].to_vec()]);
        s.analyze(&buf, &mut log.ctx("s", 0, 0));
        s.set_param("hop", &json!(50)).unwrap();
        s.set_param("bands", &json!(0)).unwrap();
        buf = crate::testing::buf_of(&[x[300..].to_vec()]);
        s.analyze(&buf, &mut log.ctx("s", 1, 300));
        let events = log.parsed();
        let samples: Vec<u64> = events.iter().map(|e| e["sample"].as_u64().unwrap()).collect();
        assert_eq!(samples[..4], [255, 305, 355, 405]);
        assert!(events[0]["data"]["bands_db"].is_array() && events[1]["data"]["bins_db"].is_array());
        assert!(s.set_param("window", &json!("hann")).is_ok());
        assert!(s.set_param("window", &json!("blackman")).is_err());
        assert!(s.set_param("fft_size", &json!(512)).is_err());
        assert!(s.set_param("hop", &json!(257)).is_err());
        assert!(s.set_param("bands", &json!(600)).is_err());
    }
}
