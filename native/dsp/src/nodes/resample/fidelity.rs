//! Stepped-sine fidelity tests (docs/audio.md round 2): every preset against the [`Band`] it states.
//!
//! A tone of known frequency and amplitude goes through the node (48k↔16k, the polyphase engine,
//! f32 output: nothing is rounded to 16 bits), the filter's start-up and flushed tail are cut off,
//! and the steady state is measured by a least-squares sine fit:
//! - passband: the fitted amplitude over the input's, within ±0.1 dB up to `flat_to`;
//! - the -3 dB point: at `minus_3db_at_or_above` the tone is at most 3 dB down;
//! - rejection, decimating: a tone at or above the lower Nyquist rate comes out (aliased) at most
//!   `-rejection_db` relative to the input;
//! - rejection, interpolating: all that is left once the tone is fitted and removed (its images
//!   at `fs_in ± f`, plus noise) is at most `-rejection_db` relative to the input;
//! - THD+N of a -6 dBFS 1 kHz tone at most `thd_n_db`.

use super::*;
use crate::testing::{sine, sine_amplitude, stream_block, thd_n_db};
use serde_json::json;

const QUALITIES: [Quality; 3] = [Quality::Fast, Quality::Balanced, Quality::High];
const AMPLITUDE: f64 = 0.5;

fn name(q: Quality) -> &'static str {
    match q {
        Quality::Fast => "fast",
        Quality::Balanced => "balanced",
        Quality::High => "high",
    }
}

/// The steady-state output of a tone of `freq` through `from -> to` at `quality`.
fn steady(from: u32, to: u32, quality: Quality, freq: f64, amplitude: f64) -> Vec<f32> {
    let mut r = Resample::new(&json!({ "sample_rate": to, "quality": name(quality) }), Format::new(from, 1).unwrap())
        .unwrap();
    let x = sine(freq, from, amplitude, from as usize / 2);
    let y = stream_block(&mut r, &[x], from as usize / 50);
    let skip = r.latency_frames() * 3 + 200;
    y[0][skip..y[0].len() - skip].to_vec()
}

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Gain in dB of a tone at `fraction` of the lower Nyquist rate.
fn gain_db(from: u32, to: u32, quality: Quality, fraction: f64) -> f64 {
    let freq = fraction * f64::from(from.min(to)) / 2.0;
    db(sine_amplitude(&steady(from, to, quality, freq, AMPLITUDE), freq, to) / AMPLITUDE)
}

const DIRECTIONS: [(u32, u32); 2] = [(48_000, 16_000), (16_000, 48_000)];

#[test]
fn the_passband_is_flat_to_the_stated_edge() {
    for q in QUALITIES {
        let band = q.band();
        for (from, to) in DIRECTIONS {
            let mut worst: f64 = 0.0;
            for step in 0..=20 {
                let fraction = 0.01 + (band.flat_to - 0.01) * f64::from(step) / 20.0;
                let g = gain_db(from, to, q, fraction);
                assert!(g.abs() <= 0.1, "{} {from}->{to}: {g:.4} dB at {fraction:.3} × Nyquist", name(q));
                worst = if g.abs() > worst.abs() { g } else { worst };
            }
            eprintln!("resample {} {from}->{to}: within {worst:+.5} dB up to {} × Nyquist", name(q), band.flat_to);
        }
    }
}

#[test]
fn the_response_is_at_most_3_db_down_at_the_stated_point() {
    for q in QUALITIES {
        let at = q.band().minus_3db_at_or_above;
        for (from, to) in DIRECTIONS {
            let g = gain_db(from, to, q, at);
            eprintln!("resample {} {from}->{to}: {g:.2} dB at {at} × Nyquist", name(q));
            assert!(g >= -3.0, "{} {from}->{to}: {g:.2} dB at {at} × Nyquist", name(q));
        }
    }
}

#[test]
fn nothing_aliases_when_decimating() {
    // 48k -> 16k: tones from the output's Nyquist (8 kHz) up to just below the input's (24 kHz).
    for q in QUALITIES {
        let band = q.band();
        let mut worst = f64::NEG_INFINITY;
        for fraction in [1.0, 1.005, 1.02, 1.05, 1.1, 1.2, 1.4, 1.7, 2.0, 2.5, 2.99] {
            let y = steady(48_000, 16_000, q, fraction * 8_000.0, AMPLITUDE);
            let rms = (y.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
            let level = db(rms * 2f64.sqrt() / AMPLITUDE);
            worst = worst.max(level);
            assert!(level <= -band.rejection_db, "{}: {fraction} × Nyquist comes out at {level:.1} dB", name(q));
        }
        eprintln!("resample {} 48000->16000: stopband (1.0..3.0 × Nyquist) at most {worst:.1} dB", name(q));
    }
}

#[test]
fn no_image_survives_when_interpolating() {
    // 16k -> 48k: a tone at f leaves images at 16k - f and 16k + f (from 1.05 × Nyquist up).
    for q in QUALITIES {
        let band = q.band();
        let mut worst = f64::NEG_INFINITY;
        for fraction in [0.05, 0.3, 0.6, 0.8, band.minus_3db_at_or_above] {
            let freq = fraction * 8_000.0;
            let y = steady(16_000, 48_000, q, freq, AMPLITUDE);
            let tone = sine_amplitude(&y, freq, 48_000);
            // thd_n_db is relative to the fitted tone; bring it to the input's level.
            let level = thd_n_db(&y, freq, 48_000) + db(tone / AMPLITUDE);
            worst = worst.max(level);
            assert!(level <= -band.rejection_db, "{}: images of {freq} Hz at {level:.1} dB", name(q));
        }
        eprintln!("resample {} 16000->48000: images at most {worst:.1} dB", name(q));
    }
}

#[test]
fn thd_n_of_a_1_khz_tone_meets_the_stated_bound() {
    for q in QUALITIES {
        let limit = q.band().thd_n_db;
        for (from, to) in DIRECTIONS {
            let t = thd_n_db(&steady(from, to, q, 1_000.0, AMPLITUDE), 1_000.0, to);
            eprintln!("resample {} {from}->{to}: THD+N {t:.1} dB (f32 output)", name(q));
            assert!(t <= limit, "{} {from}->{to}: THD+N {t:.1} dB > {limit} dB", name(q));
        }
    }
}
