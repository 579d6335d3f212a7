//! docs/limits.md and docs/audio.md on the engine itself: no plan can make it allocate without bound or flood events,
//! non-finite input never poisons state, and event positions go on across a flush.

use remotemedia_dsp::codec::Encoding;
use remotemedia_dsp::graph::MAX_GRAPH_BUFFER_BYTES;
use remotemedia_dsp::node::MAX_EVENT_BYTES_PER_BLOCK;
use remotemedia_dsp::plan::Plan;
use remotemedia_dsp::session::{Encodings, Session};
use serde_json::{json, Value};

fn plan(v: Value) -> Plan {
    Plan::from_json(&v.to_string()).unwrap()
}

const S16: Encodings = Encodings::pcm(Encoding::S16le, Encoding::S16le);
const F32: Encodings = Encodings::pcm(Encoding::F32le, Encoding::F32le);

/// Unfused resamples bouncing between the extreme rates, starting at 8 kHz.
fn bouncing_resamples(count: usize, channels: usize) -> Plan {
    let nodes: Vec<Value> = (0..count)
        .map(|i| {
            let rate = if i % 2 == 0 { 192_000 } else { 8_000 };
            let input = if i == 0 { Value::Null } else { json!(format!("r{}", i - 1)) };
            json!({ "id": format!("r{i}"), "type": "resample", "params": { "sample_rate": rate, "quality": "fast" }, "input": input })
        })
        .collect();
    plan(json!({
        "input": { "sample_rate": 8000, "channels": channels },
        "nodes": nodes,
        "output": format!("r{}", count - 1)
    }))
}

#[test]
fn chained_resamples_size_each_buffer_for_its_own_step() {
    // Each step was sized for the capacity of its source, so buffers grew ×24 per round trip and
    // 40 steps asked for tens of GB (the process aborted). Now each buffer holds one step's block.
    let p = bouncing_resamples(40, 1);
    let session = Session::new(&p, p.input, S16, 4096).expect("a few MB of buffers");
    drop(session);
}

#[test]
fn a_plan_whose_buffers_exceed_the_engine_bound_is_refused_not_aborted() {
    let p = bouncing_resamples(200, 8);
    let err = Session::new(&p, p.input, S16, 1 << 20).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains(&MAX_GRAPH_BUFFER_BYTES.to_string()), "{text}");
}

#[test]
fn spectrum_events_per_answer_are_bounded() {
    let p = plan(json!({
        "input": { "sample_rate": 48000, "channels": 1 },
        "nodes": [ { "id": "s", "type": "spectrum", "params": { "fft_size": 8192, "hop": 1, "bands": 0 }, "input": null } ]
    }));
    let mut s = Session::new(&p, p.input, S16, 65536).unwrap();
    let block: Vec<u8> = (0..32768).flat_map(|i| (((i * 131) % 20000) as i16 - 10000).to_le_bytes()).collect();
    for frame in 0..3 {
        s.process(frame, &block).unwrap();
        assert!(s.events().len() <= MAX_EVENT_BYTES_PER_BLOCK, "{}", s.events().len());
        assert!(s.events().lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    }
}

#[test]
fn non_finite_f32_input_is_zeroed_counted_and_never_poisons_a_filter() {
    let p = plan(json!({
        "input": { "sample_rate": 48000, "channels": 1 },
        "nodes": [ { "id": "lp", "type": "biquad", "params": { "kind": "lowpass", "frequency": 1000 }, "input": null } ],
        "output": "lp"
    }));
    let mut s = Session::new(&p, p.input, F32, 65536).unwrap();
    let f32s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let mut bad = vec![0.25f32; 480];
    bad[10] = f32::NAN;
    bad[20] = f32::INFINITY;
    bad[30] = f32::NEG_INFINITY;
    s.process(0, &f32s(&bad)).unwrap();
    assert_eq!(s.non_finite_samples(), 3);
    s.process(1, &f32s(&[0.25f32; 480])).unwrap();
    let out: Vec<f32> = s.output().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert!(out.iter().all(|x| x.is_finite()), "a NaN poisoned the filter");
    assert!((out[479] - 0.25).abs() < 0.01, "{}", out[479]);
}

#[test]
fn event_sample_positions_continue_across_a_flush() {
    let p = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "lv", "type": "level", "params": { "interval_ms": 100 }, "input": null } ]
    }));
    let mut s = Session::new(&p, p.input, S16, 65536).unwrap();
    let block = vec![0u8; 2 * 1600];
    let samples = |text: &str| -> Vec<u64> {
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["sample"].as_u64().unwrap()).collect()
    };
    s.process(0, &block).unwrap();
    let before = samples(s.events());
    s.flush(1);
    s.process(1, &block).unwrap();
    let after = samples(s.events());
    assert!(!before.is_empty() && !after.is_empty());
    assert!(after[0] >= 1600, "sample restarted at {} after the flush (before: {before:?})", after[0]);
    assert!(after.iter().all(|x| (1600..=3200).contains(x)), "{after:?}");
}
