//! The engine's fuzz harness on stable Rust (proptest; cargo-fuzz needs nightly): random bytes and
//! random-but-plausible inputs for every parser (WAV, plan JSON, the four codecs, Opus packets) and every node type
//! (random params in and out of range, random formats, random frames of random sizes). A property
//! fails if anything panics; every output must be finite and every event line valid JSON.

use proptest::prelude::*;
use remotemedia_dsp::codec::{self, Encoding};
use remotemedia_dsp::format::{Format, MAX_CHANNELS};
use remotemedia_dsp::nodes::NODE_TYPES;
use remotemedia_dsp::opus;
use remotemedia_dsp::plan::Plan;
use remotemedia_dsp::session::{Encodings, Session};
use remotemedia_dsp::wav;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Sessions the node property managed to build (most random params are refused; enough must not be).
static BUILT: AtomicUsize = AtomicUsize::new(0);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

const ENCODINGS: [Encoding; 4] = [Encoding::S16le, Encoding::F32le, Encoding::Mulaw, Encoding::Alaw];

/// A RIFF/WAVE header whose fields may all lie, followed by arbitrary bytes.
fn wav_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u16, 3, 0xfffe, 0, 2]),
        0u16..10,
        prop::sample::select(vec![0u32, 1, 8_000, 48_000, 192_000, 768_001, u32::MAX]),
        prop::sample::select(vec![0u16, 8, 16, 24, 32]),
        prop::sample::select(vec![0u32, 16, 18, 40, 8, u32::MAX]),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(tag, channels, rate, bits, fmt_size, data_size, tail)| {
            let mut fmt = [0u8; 40];
            fmt[0..2].copy_from_slice(&tag.to_le_bytes());
            fmt[2..4].copy_from_slice(&channels.to_le_bytes());
            fmt[4..8].copy_from_slice(&rate.to_le_bytes());
            fmt[14..16].copy_from_slice(&bits.to_le_bytes());
            let mut out = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
            out.extend_from_slice(&fmt_size.to_le_bytes());
            out.extend_from_slice(&fmt[..(fmt_size as usize).min(40)]);
            out.extend_from_slice(b"data");
            out.extend_from_slice(&data_size.to_le_bytes());
            out.extend_from_slice(&tail);
            out
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_wav_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = wav::parse(&bytes);
    }

    #[test]
    fn the_wav_parser_keeps_its_promises_on_lying_headers(bytes in wav_bytes()) {
        if let Ok(w) = wav::parse(&bytes) {
            prop_assert!(w.format.channels >= 1 && w.format.channels <= MAX_CHANNELS);
            prop_assert_eq!(w.data.len() % (w.format.channels * w.encoding.bytes_per_sample()), 0);
            prop_assert!(w.data.len() <= bytes.len());
        }
    }

    #[test]
    fn the_plan_parser_never_panics(text in ".{0,300}") {
        let _ = Plan::from_json(&text);
    }

    #[test]
    fn decoding_never_panics_and_sanitized_samples_are_finite(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        enc in 0usize..4,
        channels in 1usize..=MAX_CHANNELS,
    ) {
        let encoding = ENCODINGS[enc];
        if let Ok(frames) = codec::frames_in(bytes.len(), encoding, channels) {
            let mut planes = vec![vec![0f32; frames]; channels];
            let mut views: Vec<&mut [f32]> = planes.iter_mut().map(|p| p.as_mut_slice()).collect();
            prop_assert!(codec::decode(&bytes, encoding, &mut views).is_ok());
            codec::zero_non_finite(&mut views);
            prop_assert!(planes.iter().flatten().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn opus_decoding_never_panics_and_its_audio_is_finite(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..8),
        rate in prop::sample::select(opus::SAMPLE_RATES.to_vec()),
        channels in 1usize..=2,
    ) {
        // Random bytes as packets, a TOC byte of every kind among them; the empty ones are lost packets.
        let mut decoder = opus::Decoder::new(Format::new(rate, channels).unwrap()).unwrap();
        let most = decoder.max_frames() * channels;
        for packet in &packets {
            if let Ok(pcm) = decoder.decode(packet) {
                prop_assert!(pcm.len() <= most);
                prop_assert!(pcm.iter().all(|x| x.is_finite()));
            }
        }
    }

    #[test]
    fn opus_encoding_any_float_never_panics(samples in prop::collection::vec(any::<f32>(), 0..2048), flush in any::<bool>()) {
        let mut encoder = opus::Encoder::new(Format::new(8_000, 1).unwrap(), 0).unwrap();
        encoder.push(&[&samples], samples.len());
        let mut out = Vec::new();
        encoder.encode(flush, &mut out);
        prop_assert!(out.len() <= opus::MAX_PACKET_BYTES);
        // A packet as soon as 20 ms (160 frames at 8 kHz) wait, or anything at all on a flush.
        let sends = samples.len() >= 160 || (flush && !samples.is_empty());
        prop_assert_eq!(!out.is_empty(), sends);
    }

    #[test]
    fn encoding_any_float_never_panics(samples in prop::collection::vec(any::<f32>(), 0..256), enc in 0usize..4) {
        let encoding = ENCODINGS[enc];
        let mut out = Vec::new();
        codec::encode(&[&samples], samples.len(), encoding, &mut out);
        prop_assert_eq!(out.len(), samples.len() * encoding.bytes_per_sample());
    }
}

/// The params each node type takes (and one it does not, to test the refusal).
fn param_names(node_type: &str) -> &'static [&'static str] {
    match node_type {
        "gain" => &["db"],
        "upmix" => &["channels"],
        "resample" => &["sample_rate", "quality"],
        "normalize" => &["target_dbfs", "mode", "window_ms", "max_gain_db"],
        "biquad" => &["kind", "frequency", "q", "gain_db"],
        "limiter" => &["ceiling_dbfs", "release_ms"],
        "noise_gate" => &["threshold_dbfs", "attack_ms", "release_ms"],
        "vad" => &["aggressiveness", "hangover_ms"],
        "spectrum" => &["fft_size", "hop", "window", "bands"],
        "level" => &["interval_ms"],
        _ => &[],
    }
}

/// Params for a node of `node_type`: its own names (rarely an unknown one) with values at, inside and
/// beyond every range, or junk.
fn params(node_type: &'static str) -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        prop::sample::select(vec![
            -1e9, -96.0, -60.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 8.0, 48.0, 256.0, 512.0, 1000.0, 8000.0, 8192.0, 16_000.0,
            192_000.0, 1e12,
        ]),
        any::<f64>().prop_filter("JSON numbers are finite", |x| x.is_finite()),
    ]
    .prop_map(Value::from);
    let words = vec!["fast", "balanced", "high", "hann", "lowpass", "highpass", "bandpass", "notch", "peaking", "lowshelf", "highshelf", "peak", "rms", "x"];
    let value = prop_oneof![
        4 => number,
        3 => prop::sample::select(words).prop_map(Value::from),
        1 => prop::sample::select(vec![json!(null), json!([]), json!({})]),
    ];
    let mut names: Vec<&'static str> = param_names(node_type).to_vec();
    names.push("nope");
    let weights: Vec<(u32, &'static str)> = names.iter().map(|&n| (if n == "nope" { 1 } else { 8 }, n)).collect();
    let name = prop::strategy::Union::new_weighted(weights.into_iter().map(|(w, n)| (w, Just(n))).collect());
    prop::collection::btree_map(name, value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// A node type with params for it, and live params for it too.
fn node() -> impl Strategy<Value = (&'static str, Value, Option<Value>)> {
    prop::sample::select(NODE_TYPES.to_vec())
        .prop_flat_map(|t| (Just(t), params(t), prop::option::of(params(t))))
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn every_node_with_random_params_and_frames_never_panics_and_stays_finite(
        (node_type, params, live) in node(),
        rate in prop::sample::select(vec![8_000u32, 16_000, 44_100, 48_000, 192_000]),
        channels in 1usize..=MAX_CHANNELS,
        enc in 0usize..4,
        messages in prop::collection::vec((0usize..600, any::<u32>()), 1..6),
    ) {
        let encoding = ENCODINGS[enc];
        let plan_json = json!({
            "input": { "sample_rate": rate, "channels": channels },
            "nodes": [ { "id": "n", "type": node_type, "params": params, "input": null } ],
            "output": if ["vad", "spectrum", "level", "dtmf"].contains(&node_type) { Value::Null } else { json!("n") },
        });
        let Ok(plan) = Plan::from_json(&plan_json.to_string()) else { return Ok(()) };
        let format = Format::new(rate, channels).unwrap();
        let Ok(mut session) = Session::new(&plan, format, Encodings::pcm(encoding, Encoding::F32le), 8192) else {
            return Ok(());
        };
        BUILT.fetch_add(1, Ordering::Relaxed);
        let frame_bytes = channels * encoding.bytes_per_sample();
        for (k, (frames, seed)) in messages.iter().enumerate() {
            // Bytes from a cheap generator: loud, quiet, and (as f32le) NaN/Inf patterns alike.
            let mut x = *seed | 1;
            let bytes: Vec<u8> = (0..frames * frame_bytes).map(|_| { x ^= x << 13; x ^= x >> 17; x ^= x << 5; x as u8 }).collect();
            if k == 2 {
                if let Some(Value::Object(map)) = &live {
                    for (name, value) in map {
                        let _ = session.graph_mut().set_param("n", name, value);
                    }
                }
            }
            prop_assert!(session.process(k as u64, &bytes).is_ok());
            for chunk in session.output().chunks_exact(4) {
                let v = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                prop_assert!(v.is_finite(), "{node_type}: non-finite output");
            }
            for line in session.events().lines() {
                prop_assert!(serde_json::from_str::<Value>(line).is_ok(), "{node_type}: bad event {line}");
            }
        }
        session.flush(messages.len() as u64);
        for chunk in session.output().chunks_exact(4) {
            prop_assert!(f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]).is_finite());
        }
    }
}

#[test]
fn the_node_property_builds_and_runs_many_sessions() {
    // Runs the property once more on its own count, so this test does not depend on test order.
    BUILT.store(0, Ordering::Relaxed);
    every_node_with_random_params_and_frames_never_panics_and_stays_finite();
    assert!(BUILT.load(Ordering::Relaxed) > 40, "only {} sessions built", BUILT.load(Ordering::Relaxed));
}
