//! Echo cancellation measured on the speech recordings played through synthetic rooms: ERLE with the near end
//! silent, the near end's level through double talk, chunk invariance, params.

use super::*;
use crate::nodes::resample::Resample;
use crate::testing::{read_fixture_audio, stream_block};
use serde_json::json;

const RATE: u32 = 16_000;

/// The far end: the 16 kHz speech recording (5.6 s of espeak-ng, about -20 dBFS).
fn far_speech() -> Vec<f32> {
    let (planes, rate) = read_fixture_audio("speech-16k-mono.wav");
    assert_eq!(rate, RATE);
    planes.into_iter().next().unwrap()
}

/// The near-end talker: the 48 kHz speech recording (another text, 2.7 s), brought to 16 kHz by
/// the `resample` node.
fn near_talker() -> Vec<f32> {
    let (planes, rate) = read_fixture_audio("speech-48k-mono.wav");
    let mut r = Resample::new(&json!({ "sample_rate": RATE, "quality": "high" }), Format::new(rate, 1).unwrap()).unwrap();
    stream_block(&mut r, &planes, 0).remove(0)
}

/// A room: `delay_ms` of pure delay (the playout and capture buffers plus the flight time), a
/// direct path of 0.5, four early reflections within 20 ms, then a diffuse tail of decaying noise
/// reaching -60 dB after `rt60_ms` (its energy is about that of the direct path).
fn room(delay_ms: f64, rt60_ms: f64, seed: u64) -> Vec<f32> {
    let at = |ms: f64| (ms * f64::from(RATE) / 1000.0) as usize;
    let (delay, tail) = (at(delay_ms), at(rt60_ms));
    let mut h = vec![0.0f32; delay + tail];
    let mut state = seed | 1;
    let mut rand = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / (1u64 << 31) as f64 - 0.5
    };
    // Amplitude decay time constant: -60 dB of energy after rt60.
    let tau = rt60_ms / 1000.0 * f64::from(RATE) / (3.0 * 10f64.ln());
    for (i, v) in h[delay..].iter_mut().enumerate().skip(at(1.0)) {
        *v = (0.45 * rand() * (-(i as f64) / tau).exp()) as f32;
    }
    h[delay] = 0.5;
    for (ms, gain) in [(2.9, -0.3), (6.1, 0.22), (11.3, -0.17), (17.8, 0.12)] {
        h[delay + at(ms)] += gain * (1.0 + 0.4 * rand()) as f32;
    }
    h
}

fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    let taps: Vec<(usize, f32)> = h.iter().copied().enumerate().filter(|(_, v)| *v != 0.0).collect();
    (0..x.len()).map(|i| taps.iter().filter(|(k, _)| *k <= i).map(|(k, v)| v * x[i - k]).sum()).collect()
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v).powi(2)).sum()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

fn node() -> Aec {
    Aec::new(&json!({ "reference_channel": 1 }), Format::new(RATE, 2).unwrap()).unwrap()
}

/// Near end = echo of `far` through `h` plus `near_speech`; returns (near input, output).
fn run(far: &[f32], h: &[f32], near_speech: &[f32], chunk: usize) -> (Vec<f32>, Vec<f32>) {
    let echo = convolve(far, h);
    let near: Vec<f32> = echo.iter().zip(near_speech).map(|(e, s)| e + s).collect();
    let out = stream_block(&mut node(), &[near.clone(), far.to_vec()], chunk).remove(0);
    assert_eq!(out.len(), near.len());
    (near, out)
}

/// ERLE over `out` against `near` from `from` on, in dB.
fn erle(near: &[f32], out: &[f32], from: usize) -> f64 {
    db(energy(&near[from..]) / energy(&out[from..]))
}

#[test]
fn speech_echo_is_cancelled_by_25_db_after_two_seconds_of_convergence() {
    let s = RATE as usize;
    let far = far_speech();
    let mut worst = f64::INFINITY;
    for (delay_ms, rt60_ms, seed) in [(40.0, 150.0, 3), (80.0, 200.0, 4), (120.0, 150.0, 5), (160.0, 120.0, 6), (200.0, 100.0, 7)] {
        let h = room(delay_ms, rt60_ms, seed);
        let (near, out) = run(&far, &h, &vec![0.0; far.len()], 320);
        let per: Vec<String> = (0..far.len() / (s / 2))
            .map(|k| format!("{:.1}", erle(&near[..(k + 1) * s / 2], &out[..(k + 1) * s / 2], k * s / 2)))
            .collect();
        let erle = erle(&near, &out, 2 * s);
        eprintln!("aec: echo delayed {delay_ms} ms, RT60 {rt60_ms} ms: ERLE {erle:.1} dB from 2 s on; per half second {per:?}");
        worst = worst.min(erle);
    }
    assert!(worst >= 25.0, "ERLE {worst:.1} dB in the worst room");
}

#[test]
fn near_speech_keeps_its_level_through_double_talk() {
    let s = RATE as usize;
    let far = far_speech();
    // The near end talks over the last 2.7 s of the far end, after 2.9 s of convergence.
    let talker = near_talker();
    let (talk, from) = (talker.len(), far.len() - talker.len());
    assert!(from >= 2 * s);
    let mut near_speech = vec![0.0; far.len()];
    near_speech[from..].copy_from_slice(&talker);
    for (delay_ms, rt60_ms, seed) in [(40.0, 150.0, 3), (120.0, 150.0, 5), (200.0, 100.0, 7)] {
        let h = room(delay_ms, rt60_ms, seed);
        let (_, out) = run(&far, &h, &near_speech, 320);
        // The whole double-talk span, and every 250 ms of it where the near end talks (no gating).
        let span = from..from + talk;
        let whole = db(energy(&out[span.clone()]) / energy(&near_speech[span.clone()]));
        eprintln!("aec: echo delayed {delay_ms} ms, double talk: output / near speech {whole:+.2} dB");
        assert!(whole.abs() <= 3.0, "output level {whole:+.2} dB from the near speech");
        for start in span.clone().step_by(s / 4).take_while(|t| t + s / 4 <= span.end) {
            let quarter = start..start + s / 4;
            let talk = energy(&near_speech[quarter.clone()]);
            if talk > 1e-2 * energy(&near_speech[span.clone()]) {
                let level = db(energy(&out[quarter.clone()]) / talk);
                assert!(level.abs() <= 3.0, "delay {delay_ms} ms, {quarter:?}: output {level:+.2} dB from the near speech");
            }
        }
    }
}

#[test]
fn output_does_not_depend_on_how_the_stream_is_cut() {
    let far = far_speech()[..RATE as usize].to_vec();
    let near_speech = near_talker()[..RATE as usize].to_vec();
    let h = room(40.0, 150.0, 3);
    let (_, whole) = run(&far, &h, &near_speech, 0);
    for chunk in [1, 7, 160, 333] {
        assert!(run(&far, &h, &near_speech, chunk).1 == whole, "chunk {chunk}");
    }
}

#[test]
fn params_and_formats_are_checked() {
    let stereo = Format::new(RATE, 2).unwrap();
    for bad in [
        json!({ "reference_channel": 2 }),
        json!({ "reference_channel": 0 }),
        json!({ "tail_ms": 10 }),
        json!({ "tail_ms": 1001 }),
        json!({ "delay": 1 }),
    ] {
        assert!(matches!(Aec::new(&bad, stereo), Err(NodeError::BadParams { .. })), "{bad}");
    }
    assert!(matches!(Aec::new(&json!({}), Format::new(RATE, 1).unwrap()), Err(NodeError::BadFormat { .. })));
    let three = Aec::new(&json!({ "reference_channel": 2, "near_channel": 1 }), Format::new(48_000, 3).unwrap()).unwrap();
    assert_eq!(three.output_format(), Format::new(48_000, 1).unwrap());
    assert_eq!(three.block(), 512);
    assert_eq!(node().block(), 256);
    assert!(node().set_param("tail_ms", &json!(100)).is_err());
}
