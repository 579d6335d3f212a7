//! The benchmark rows: the seed table's rows as our engine does them, and the baselines.

use std::f64::consts::PI;

use realfft::RealFftPlanner;
use remotemedia_dsp::buffer::AudioBuf;
use remotemedia_dsp::codec::{self, Encoding};
use remotemedia_dsp::format::Format;
use remotemedia_dsp::graph::Workspace;
use remotemedia_dsp::node::{AnalysisNode, BlockNode, Ctx, InPlaceNode};
use remotemedia_dsp::nodes::{normalize::Normalize, resample::Resample, spectrum::Spectrum};
use remotemedia_dsp::plan::Plan as GraphPlan;
use remotemedia_dsp::session::{Encodings, Session};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde_json::{json, Value};

use crate::measure::{self, Plan, Summary};

/// The seed's target for a row ("Performance Targets" table).
#[derive(Clone, Debug)]
pub struct Target {
    /// The seed's row name.
    pub seed_row: &'static str,
    /// Throughput target, in the row's unit.
    pub value: f64,
    /// p99 latency target, microseconds.
    pub latency_us: f64,
    /// As the seed writes it.
    pub text: &'static str,
}

/// One of issue 3's goals, checked.
#[derive(Clone, Debug)]
pub struct Goal {
    /// The goal, in words.
    pub text: String,
    /// Whether this run met it.
    pub met: bool,
}

/// One measured row.
#[derive(Clone, Debug)]
pub struct Row {
    /// Stable id (`pipeline.fused.balanced`, `resample.16k-48k.high`, …).
    pub id: String,
    /// What was measured, in words.
    pub name: String,
    /// Throughput in `unit`.
    pub value: f64,
    /// Unit of `value` (comparable with the target's).
    pub unit: &'static str,
    /// Timing of one call (one chunk, one FFT, one frame).
    pub summary: Summary,
    /// The seed's target, if this row is one of its table's.
    pub target: Option<Target>,
    /// Issue 3's goal, if it sets one for this row.
    pub goal: Option<Goal>,
    /// Anything else worth keeping (baseline ratios, chunk sizes…).
    pub extra: Value,
}

impl Row {
    fn new(id: impl Into<String>, name: impl Into<String>, value: f64, unit: &'static str, summary: Summary) -> Row {
        Row { id: id.into(), name: name.into(), value, unit, summary, target: None, goal: None, extra: json!({}) }
    }

    fn target(mut self, t: Target) -> Row {
        self.target = Some(t);
        self
    }

    fn goal(mut self, text: impl Into<String>, met: bool) -> Row {
        self.goal = Some(Goal { text: text.into(), met });
        self
    }

    fn extra(mut self, key: &str, v: Value) -> Row {
        self.extra[key] = v;
        self
    }

    /// Throughput over the seed's target.
    pub fn ratio(&self) -> Option<f64> {
        self.target.as_ref().map(|t| self.value / t.value)
    }

    /// The row as JSON.
    pub fn to_json(&self) -> Value {
        let s = &self.summary;
        json!({
            "id": self.id,
            "name": self.name,
            "seed_row": self.target.as_ref().map(|t| t.seed_row),
            "ours": {
                "value": self.value,
                "unit": self.unit,
                "calls_per_s": s.calls_per_s,
                "rep_calls_per_s": s.rep_calls_per_s,
                "p50_us": s.p50_ns / 1e3,
                "p99_us": s.p99_ns / 1e3,
                "p999_us": s.p999_ns / 1e3,
                "max_us": s.max_ns / 1e3,
                "calls_timed": s.calls,
                // Robust to preemption by other processes, unlike the median over repetitions.
                "calls_per_s_at_p50": 1e9 / s.p50_ns,
                "text": self.ours_text(),
            },
            "target": self.target.as_ref().map(|t| json!({
                "value": t.value, "unit": self.unit, "p99_us": t.latency_us, "text": t.text,
            })),
            "ratio": self.ratio(),
            "latency_ratio": self.target.as_ref().map(|t| t.latency_us / (s.p99_ns / 1e3)),
            "goal": self.goal.as_ref().map(|g| json!({ "text": g.text, "met": g.met })),
            "extra": self.extra,
        })
    }

    fn ours_text(&self) -> String {
        format!("{} {}", human(self.value), self.unit)
    }
}

/// 1234567 → "1.23 M", 51234 → "51.2 k", 12.3 → "12.3".
pub fn human(x: f64) -> String {
    let (v, suffix) = if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e4 {
        (x / 1e3, " k")
    } else {
        (x, "")
    };
    let digits = if v >= 100.0 { 0 } else if v >= 10.0 { 1 } else { 2 };
    format!("{v:.digits$}{suffix}")
}

fn us(ns: f64) -> String {
    if ns >= 1e5 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}

/// Prints the rows as a table.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<56} {:>20} {:>10} {:>10} {:>10}  {:<28} {:>8}  goal",
        "row", "ours", "p50", "p99", "max", "seed target", "ratio"
    );
    for r in rows {
        let s = &r.summary;
        let target = r.target.as_ref().map_or(String::new(), |t| t.text.to_string());
        let ratio = r.ratio().map_or(String::new(), |x| format!("{x:.1}×"));
        let goal = r.goal.as_ref().map_or(String::new(), |g| format!("{} {}", if g.met { "MET" } else { "MISSED" }, g.text));
        println!(
            "{:<56} {:>20} {:>10} {:>10} {:>10}  {:<28} {:>8}  {}",
            r.name,
            r.ours_text(),
            us(s.p50_ns),
            us(s.p99_ns),
            us(s.max_ns),
            target,
            ratio,
            goal
        );
    }
}

/// Prints where a pipeline frame's time goes, node by node (from [`pipeline`]'s breakdown).
pub fn print_breakdown(breakdown: &Value) {
    let Some(map) = breakdown.as_object() else { return };
    for (name, b) in map {
        let nodes: Vec<String> = b["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| format!("{} {:.2}", n["type"].as_str().unwrap_or("?"), n["us_per_frame"].as_f64().unwrap_or(0.0)))
            .collect();
        println!(
            "pipeline {name}: {:.2} µs/frame = {} + outside nodes (decode, copies, encode, timers) {:.2}",
            b["total_us_per_frame"].as_f64().unwrap_or(0.0),
            nodes.join(" + "),
            b["outside_nodes_us_per_frame"].as_f64().unwrap_or(0.0)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signals

/// A deterministic speech-like test signal: a few harmonics under a 3 Hz syllable envelope that
/// drops to silence part of the time, plus faint noise (so the VAD and normalizer do real work).
pub fn test_signal(sample_rate: u32, channels: usize, seconds: f64) -> Vec<Vec<f32>> {
    let frames = (seconds * f64::from(sample_rate)) as usize;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..channels)
        .map(|c| {
            (0..frames)
                .map(|i| {
                    let t = i as f64 / f64::from(sample_rate);
                    let env = ((2.0 * PI * 3.0 * t).sin()).max(0.0) * if (t as u64) % 3 == 2 { 0.0 } else { 1.0 };
                    let f0 = 140.0 + 20.0 * c as f64 + 30.0 * (2.0 * PI * 0.5 * t).sin();
                    let voice: f64 = (1..=6).map(|h| (2.0 * PI * f0 * h as f64 * t).sin() / h as f64).sum();
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let noise = ((seed >> 40) as f64 / (1u64 << 23) as f64 - 1.0) * 0.003;
                    (0.25 * env * voice + noise) as f32
                })
                .collect()
        })
        .collect()
}

/// Interleaved s16le bytes of planar audio.
fn s16le(planes: &[Vec<f32>]) -> Vec<u8> {
    let refs: Vec<&[f32]> = planes.iter().map(|p| p.as_slice()).collect();
    let mut out = Vec::new();
    codec::encode(&refs, planes[0].len(), Encoding::S16le, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Pipeline

/// The 5-node pipeline of issue 3: downmix, resample 48k→16k, gain, normalize, vad. `fused`
/// gives the plan the TypeScript optimizer produces (the four audio nodes as one fused chain, vad
/// reading it); otherwise every node is its own step.
pub fn pipeline_plan(fused: bool, quality: &str) -> String {
    let stages = json!([
        { "id": "mono", "type": "downmix", "params": {} },
        { "id": "to16k", "type": "resample", "params": { "sample_rate": 16000, "quality": quality } },
        { "id": "trim", "type": "gain", "params": { "db": -3.0 } },
        { "id": "norm", "type": "normalize", "params": { "target_dbfs": -3.0, "mode": "rms", "window_ms": 300.0, "max_gain_db": 24.0 } },
    ]);
    let vad = |input: &str| json!({ "id": "vad", "type": "vad", "params": { "aggressiveness": 2, "hangover_ms": 300 }, "input": input });
    let plan = if fused {
        json!({
            "input": { "sample_rate": 48000, "channels": 2 },
            "nodes": [
                { "id": "fused_mono_norm", "type": "fused", "input": null, "stages": stages },
                vad("fused_mono_norm"),
            ],
            "output": "fused_mono_norm",
        })
    } else {
        let mut nodes: Vec<Value> = Vec::new();
        let mut input = Value::Null;
        for s in stages.as_array().expect("array") {
            let mut n = s.clone();
            n["input"] = input.clone();
            input = n["id"].clone();
            nodes.push(n);
        }
        nodes.push(vad("norm"));
        json!({ "input": { "sample_rate": 48000, "channels": 2 }, "nodes": nodes, "output": "norm" })
    };
    plan.to_string()
}

/// 20 ms of 48 kHz stereo s16le.
pub const FRAME_BYTES: usize = 3840;

fn session(fused: bool, quality: &str) -> Session {
    let plan = GraphPlan::from_json(&pipeline_plan(fused, quality)).expect("valid plan");
    let input = Format::new(48_000, 2).expect("valid format");
    Session::new(&plan, input, Encodings::pcm(Encoding::S16le, Encoding::S16le), FRAME_BYTES)
        .expect("plan builds")
}

/// Per-node mean µs per frame over `frames` frames, from `Graph::node_timings`.
fn node_breakdown(fused: bool, quality: &str, input: &[u8], frames: usize) -> Value {
    let mut s = session(fused, quality);
    let chunks: Vec<&[u8]> = input.chunks_exact(FRAME_BYTES).collect();
    let mut sums: Vec<(String, &'static str, u64)> =
        s.graph().node_timings().map(|(id, t, _)| (id.to_string(), t, 0)).collect();
    let mut total = 0u64;
    for k in 0..frames {
        let t = std::time::Instant::now();
        s.process(k as u64, chunks[k % chunks.len()]).expect("whole frames");
        total += t.elapsed().as_nanos() as u64;
        for (sum, (_, _, ns)) in sums.iter_mut().zip(s.graph().node_timings()) {
            sum.2 += ns;
        }
    }
    let per = |ns: u64| ns as f64 / frames as f64 / 1e3;
    let nodes_us: f64 = sums.iter().map(|s| per(s.2)).sum();
    json!({
        "frames": frames,
        "total_us_per_frame": per(total),
        "outside_nodes_us_per_frame": per(total) - nodes_us,
        "nodes": sums.iter().map(|(id, t, ns)| json!({ "id": id, "type": t, "us_per_frame": per(*ns) })).collect::<Vec<_>>(),
    })
}

/// The seed's "Pipeline Execution (5 nodes)" row and its variants, and where a frame's time goes
/// node by node (mean µs per frame, fused and unfused, resample `balanced`).
pub fn pipeline(plan: Plan) -> (Vec<Row>, Value) {
    let input = s16le(&test_signal(48_000, 2, 10.0));
    let chunks: Vec<&[u8]> = input.chunks_exact(FRAME_BYTES).collect();
    let target = Target {
        seed_row: "Pipeline Execution (5 nodes)",
        value: 1000.0,
        latency_us: 5000.0,
        text: "1000 chunks/s, p99 < 5 ms",
    };
    let mut rows = Vec::new();
    let mut breakdown = serde_json::Map::new();
    for (fused, quality) in [(true, "balanced"), (false, "balanced"), (true, "fast"), (true, "high")] {
        let mut s = session(fused, quality);
        let mut k = 0u64;
        let summary = measure::run(plan, || {
            s.process(k, chunks[k as usize % chunks.len()]).expect("whole frames");
            k += 1;
            s.output().len()
        });
        let kind = if fused { "fused" } else { "unfused" };
        let name = format!("5-node pipeline, {kind}, resample {quality}");
        let value = summary.calls_per_s;
        let met = value >= 50_000.0 && summary.p99_ns <= 100_000.0;
        let mut row = Row::new(format!("pipeline.{kind}.{quality}"), name, value, "frames/s", summary)
            .target(target.clone())
            .extra("frame", json!("20 ms, 48 kHz stereo s16le (3,840 bytes) via Session::process, one thread"))
            .extra("plan", serde_json::from_str::<Value>(&pipeline_plan(fused, quality)).expect("json"));
        if quality == "balanced" {
            row = row.goal(">= 50k frames/s, p99 <= 100 µs", met);
        }
        rows.push(row);
        if quality == "balanced" {
            breakdown.insert(format!("{kind}.{quality}"), node_breakdown(fused, quality, &input, 5_000));
        }
    }
    (rows, Value::Object(breakdown))
}

/// Sessions a worker holds at once, in the rows below: a paced load's frames come in turn from that
/// many sessions, so each finds its session's state where the others' frames left the cache.
const SESSIONS_IN_TURN: usize = 1_000;

/// One frame each of `SESSIONS_IN_TURN` sessions in turn, the way a worker runs them
/// (`Session::process_into`, the answer appended to a batch, one `Workspace` for all), against one
/// session alone on the same path: what a cold session's state costs per frame.
pub fn sessions_in_turn(plan: Plan) -> Vec<Row> {
    let gain = r#"{ "input": { "sample_rate": 48000, "channels": 2 }, "nodes": [{ "id": "g", "type": "gain", "params": { "db": -3 } }], "output": "g" }"#;
    let input = s16le(&test_signal(48_000, 2, 10.0));
    let chunks: Vec<&[u8]> = input.chunks_exact(FRAME_BYTES).collect();
    let format = Format::new(48_000, 2).expect("valid format");
    let mut rows = Vec::new();
    for (name, json) in [("gain", gain.to_string()), ("5-node high", pipeline_plan(true, "high"))] {
        let graph_plan = GraphPlan::from_json(&json).expect("valid plan");
        let mut alone_p50_ns = 0.0;
        for n in [1, SESSIONS_IN_TURN] {
            let encodings = Encodings::pcm(Encoding::S16le, Encoding::S16le);
            let mut sessions: Vec<Session> =
                (0..n).map(|_| Session::new(&graph_plan, format, encodings, 1 << 16).expect("plan builds")).collect();
            // Each session's queued message is a buffer of its own, as in the pool.
            let mut queued: Vec<Vec<u8>> = vec![Vec::with_capacity(FRAME_BYTES); n];
            let mut workspace = Workspace::default();
            let mut batch: Vec<u8> = Vec::with_capacity(1 << 20);
            let mut k = 0usize;
            let summary = measure::run(plan, || {
                let i = k % n;
                queued[i].clear();
                queued[i].extend_from_slice(chunks[(k / n) % chunks.len()]);
                if batch.len() > (1 << 20) - (1 << 14) {
                    batch.clear();
                }
                sessions[i].process_into((k / n) as u64, &queued[i], &mut batch, &mut workspace).expect("whole frames");
                k += 1;
                batch.len()
            });
            let p50_ns = summary.p50_ns;
            let id = format!("in_turn.{}.{n}", name.split(' ').next().unwrap_or(name));
            let mut row = Row::new(id, format!("{name}, {n} session(s) in turn, the worker's path"), summary.calls_per_s, "frames/s", summary)
                .extra("frame", json!("20 ms, 48 kHz stereo s16le (3,840 bytes) via Session::process_into, one thread"));
            if n == 1 {
                alone_p50_ns = p50_ns;
            } else {
                row = row.extra("p50_over_one_session", json!(p50_ns / alone_p50_ns));
            }
            rows.push(row);
        }
    }
    rows
}

/// `normalize` alone on the pipeline's frames (20 ms at 16 kHz mono, the 5-node pipeline's
/// params): issue 16's goal is at most 1 µs per frame (p50 per call).
pub fn normalize(plan: Plan) -> Row {
    let rate = 16_000;
    let chunk = rate as usize / 50;
    let signal = test_signal(rate, 1, 10.0).remove(0);
    let params = json!({ "target_dbfs": -3.0, "mode": "rms", "window_ms": 300.0, "max_gain_db": 24.0 });
    let mut node = Normalize::new(&params, Format::new(rate, 1).expect("valid format")).expect("valid params");
    let mut buf = AudioBuf::new(1, chunk);
    let (mut events, mut count) = (String::new(), 0u32);
    let mut at = 0;
    let summary = measure::run(plan, || {
        buf.set_shape(1, chunk);
        buf.channel_mut(0).copy_from_slice(&signal[at..at + chunk]);
        at = if at + 2 * chunk > signal.len() { 0 } else { at + chunk };
        let mut view = buf.view_mut(0, chunk);
        let mut ctx = Ctx { events: &mut events, event_count: &mut count, node_id: "norm", frame: 0, position: 0, to_input_frames: 1.0, origin: 0 };
        node.process(&mut view, &mut ctx);
        chunk
    });
    let p50_us = summary.p50_ns / 1000.0;
    let value = summary.calls_per_s;
    Row::new("node.normalize", "normalize, 20 ms frame (16 kHz mono)", value, "frames/s", summary)
        .goal(format!("<= 1 µs per frame, p50 (is {p50_us:.2} µs)"), p50_us <= 1.0)
        .extra("frame", json!("320 frames of mono f32, the 5-node pipeline's normalize params"))
}

// ---------------------------------------------------------------------------------------------
// Resampling

/// One call pushes the next 20 ms chunk of `signal` (mono f32) through our `resample` node at
/// `quality` and returns the frames it wrote.
fn our_resample<'a>(from: u32, to: u32, quality: &str, signal: &'a [f32]) -> Box<dyn FnMut() -> usize + 'a> {
    let chunk = from as usize / 50;
    let format = Format::new(from, 1).expect("valid format");
    let mut node = Resample::new(&json!({ "sample_rate": to, "quality": quality }), format).expect("valid params");
    let mut input = AudioBuf::new(1, chunk);
    let mut output = AudioBuf::new(1, node.max_output_frames(chunk));
    let (mut events, mut count) = (String::new(), 0u32);
    let mut at = 0;
    Box::new(move || {
        input.set_shape(1, chunk);
        input.channel_mut(0).copy_from_slice(&signal[at..at + chunk]);
        at = if at + 2 * chunk > signal.len() { 0 } else { at + chunk };
        let mut ctx = Ctx { events: &mut events, event_count: &mut count, node_id: "rs", frame: 0, position: 0, to_input_frames: 1.0, origin: 0 };
        node.process(&input, &mut output, &mut ctx);
        output.frames()
    })
}

/// The same for libsoxr HQ, when it is built in and accepts the rates.
#[cfg(feature = "soxr")]
fn soxr_resample<'a>(from: u32, to: u32, signal: &'a [f32]) -> Option<Box<dyn FnMut() -> usize + 'a>> {
    let chunk = from as usize / 50;
    let mut soxr = match crate::soxr::Soxr::new(f64::from(from), f64::from(to), crate::soxr::SOXR_HQ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("libsoxr: {e}");
            return None;
        }
    };
    let mut input = vec![0f32; chunk];
    let mut output = vec![0f32; 8 * chunk * to as usize / from as usize + 4096];
    let mut at = 0;
    Some(Box::new(move || {
        input.copy_from_slice(&signal[at..at + chunk]);
        at = if at + 2 * chunk > signal.len() { 0 } else { at + chunk };
        soxr.process(&input, &mut output).expect("soxr_process")
    }))
}

#[cfg(not(feature = "soxr"))]
fn soxr_resample<'a>(_from: u32, _to: u32, _signal: &'a [f32]) -> Option<Box<dyn FnMut() -> usize + 'a>> {
    None
}

/// MB/s of f32 input (20 ms mono chunks at `from`) at the summary's median call rate.
fn input_mbps(summary: &Summary, from: u32) -> f64 {
    summary.calls_per_s * (from as usize / 50 * 4) as f64 / 1e6
}

/// The seed's "Audio Resampling (16k→48k)" row at each preset, 48k→16k too, and libsoxr HQ on
/// the same rate pairs, chunking and data.
pub fn resample(plan: Plan) -> Vec<Row> {
    let mut rows = Vec::new();
    for (from, to) in [(16_000u32, 48_000u32), (48_000, 16_000)] {
        let signal = test_signal(from, 1, 10.0).remove(0);
        let pair = format!("{}k→{}k", from / 1000, to / 1000);
        let id_pair = format!("{}k-{}k", from / 1000, to / 1000);
        let seed = (from, to) == (16_000, 48_000);
        let target = Target {
            seed_row: "Audio Resampling (16k→48k)",
            value: 500.0,
            latency_us: 1000.0,
            text: "500 MB/s, p99 < 1 ms",
        };
        // `high` and libsoxr HQ, the goal's pair, with their repetitions interleaved: the load
        // of a shared machine falls on both alike.
        let (mut paired, baseline) = match soxr_resample(from, to, &signal) {
            Some(soxr) => {
                let (ours, soxr) = measure::run_pair(plan, our_resample(from, to, "high", &signal), soxr);
                let mbps = input_mbps(&soxr, from);
                (Some(ours), Some((soxr, mbps)))
            }
            None => (None, None),
        };
        for quality in ["fast", "balanced", "high"] {
            let summary = match paired.take() {
                Some(ours) if quality == "high" => ours,
                other => {
                    paired = other;
                    measure::run(plan, our_resample(from, to, quality, &signal))
                }
            };
            let mbps = input_mbps(&summary, from);
            let mut row = Row::new(
                format!("resample.{id_pair}.{quality}"),
                format!("resample {pair} {quality}"),
                mbps,
                "MB/s",
                summary,
            )
            .extra("chunk_frames", json!(from / 50))
            .extra("input", json!("mono f32, 20 ms chunks; MB/s of f32 input"));
            if seed {
                row = row.target(target.clone());
            }
            if let Some((soxr, soxr_mbps)) = &baseline {
                let vs = mbps / soxr_mbps;
                // Per-call p50 ratio too: on a busy machine preemptions land in some repetitions
                // and drag their throughput; the median call is what either side costs undisturbed.
                let vs_p50 = soxr.p50_ns / row.summary.p50_ns;
                row = row.extra("vs_soxr_hq", json!(vs)).extra("vs_soxr_hq_p50", json!(vs_p50));
                if quality == "high" {
                    row = row.extra("schedule", json!("repetitions interleaved with libsoxr HQ's (a b, b a, …)")).goal(format!(">= 0.7× libsoxr HQ (is {vs:.2}×; p50 per call {vs_p50:.2}×)"), vs >= 0.7);
                }
            } else if quality == "high" {
                row = row.extra("vs_soxr_hq", Value::Null);
            }
            rows.push(row);
        }
        for (label, kind) in [("rubato Fft (synchronous, FFT-based)", Alt::Fft), ("rubato sinc 256, nearest, oversampling 384", Alt::Nearest)] {
            let (summary, mbps) = alternative(plan, from, to, kind, &signal);
            let mut row = Row::new(
                format!("resample.{id_pair}.alt_{}", kind.id()),
                format!("alt: {label} {pair}"),
                mbps,
                "MB/s",
                summary,
            )
            .extra("note", json!("not our node: what another rubato design would cost, for comparison only"));
            if let Some((_, soxr_mbps)) = &baseline {
                row = row.extra("vs_soxr_hq", json!(mbps / soxr_mbps));
            }
            rows.push(row);
        }
        if let Some((summary, mbps)) = baseline {
            let mut row = Row::new(
                format!("resample.{id_pair}.soxr_hq"),
                format!("libsoxr HQ {pair} (baseline)"),
                mbps,
                "MB/s",
                summary,
            )
            .extra("chunk_frames", json!(from / 50));
            if seed {
                row = row.target(target.clone());
            }
            rows.push(row);
        }
    }
    rows
}

/// Resampler designs other than our node's, timed the same way, to show what `high` could cost.
#[derive(Clone, Copy)]
enum Alt {
    /// rubato's synchronous FFT resampler (fixed rational ratio).
    Fft,
    /// rubato's sinc resampler, 256 taps, nearest table entry, 384 table steps per sample: for the
    /// 3:1 and 1:3 ratios here every fractional position is a table entry, so one dot product per
    /// output frame instead of four.
    Nearest,
}

impl Alt {
    fn id(self) -> &'static str {
        match self {
            Alt::Fft => "fft",
            Alt::Nearest => "sinc256_nearest384",
        }
    }
}

fn alternative(plan: Plan, from: u32, to: u32, kind: Alt, signal: &[f32]) -> (Summary, f64) {
    use rubato::audioadapter_buffers::direct::SequentialSliceOfSlices;
    use rubato::{Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters, SincInterpolationType, WindowFunction};
    let chunk = from as usize / 50;
    let mut r: Box<dyn Resampler<f32>> = match kind {
        Alt::Fft => Box::new(Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input).expect("valid fft resampler")),
        Alt::Nearest => {
            let p = SincInterpolationParameters::new(256, WindowFunction::BlackmanHarris2)
                .oversampling_factor(384)
                .interpolation(SincInterpolationType::Nearest);
            Box::new(Async::<f32>::new_sinc(f64::from(to) / f64::from(from), 1.0, &p, chunk, 1, FixedAsync::Input).expect("valid sinc"))
        }
    };
    let mut input = vec![0f32; chunk];
    let mut output = vec![0f32; r.output_frames_max() + 8];
    let mut at = 0;
    let summary = measure::run(plan, || {
        input.copy_from_slice(&signal[at..at + chunk]);
        at = if at + 2 * chunk > signal.len() { 0 } else { at + chunk };
        let ins = [input.as_slice()];
        let cap = output.len();
        let mut outs = [output.as_mut_slice()];
        let ia = SequentialSliceOfSlices::new(&ins, 1, chunk).expect("one plane");
        let mut oa = SequentialSliceOfSlices::new_mut(&mut outs, 1, cap).expect("one plane");
        r.process_into_buffer(&ia, &mut oa, None).expect("sized").1
    });
    let mbps = summary.calls_per_s * (chunk * 4) as f64 / 1e6;
    (summary, mbps)
}

// ---------------------------------------------------------------------------------------------
// FFT

/// The seed's "FFT (1024-point)" row: realfft r2c as `spectrum` runs it, rustfft's complex FFT
/// of the same length, and the whole `spectrum` node.
pub fn fft(plan: Plan) -> Vec<Row> {
    const N: usize = 1024;
    let target = Target {
        seed_row: "FFT (1024-point)",
        value: 20e6,
        latency_us: 100.0,
        text: "20 M samples/s, p99 < 100 µs",
    };
    let signal = test_signal(48_000, 1, 1.0).remove(0);
    let frame = &signal[4800..4800 + N];
    let mut rows = Vec::new();

    // Real FFT: the input is clobbered by realfft, so each call copies the frame in first
    // (as the spectrum node's windowing pass does).
    let r2c = RealFftPlanner::<f32>::new().plan_fft_forward(N);
    let (mut input, mut spectrum, mut scratch) = (r2c.make_input_vec(), r2c.make_output_vec(), r2c.make_scratch_vec());
    let real = measure::run(plan, || {
        input.copy_from_slice(frame);
        r2c.process_with_scratch(&mut input, &mut spectrum, &mut scratch).expect("sizes match");
        spectrum[1].re
    });

    // Complex FFT of the same real frame (imaginary parts zero), in place.
    let c2c = FftPlanner::<f32>::new().plan_fft_forward(N);
    let complex_frame: Vec<Complex<f32>> = frame.iter().map(|&x| Complex::new(x, 0.0)).collect();
    let mut buf = complex_frame.clone();
    let mut cscratch = vec![Complex::new(0.0, 0.0); c2c.get_inplace_scratch_len()];
    let complex = measure::run(plan, || {
        buf.copy_from_slice(&complex_frame);
        c2c.process_with_scratch(&mut buf, &mut cscratch);
        buf[1].re
    });

    let speedup = complex.mean_ns() / real.mean_ns();
    let real_value = real.calls_per_s * N as f64;
    let met = real.p50_ns <= 1500.0;
    rows.push(
        Row::new("fft.real1024", "real FFT 1024 (realfft r2c)", real_value, "samples/s", real)
            .target(target.clone())
            .goal("median <= 1.5 µs per FFT", met)
            .extra("vs_complex_speedup", json!(speedup)),
    );
    let complex_value = complex.calls_per_s * N as f64;
    rows.push(
        Row::new("fft.complex1024", "complex FFT 1024 (rustfft, baseline)", complex_value, "samples/s", complex)
            .target(target.clone()),
    );

    // The whole spectrum node: default params (1024, hop 512, 32 bands), 20 ms blocks at 48 kHz mono.
    let block = 960;
    let format = Format::new(48_000, 1).expect("valid format");
    let mut node = Spectrum::new(&json!({}), format).expect("default params");
    let mut input = AudioBuf::new(1, block);
    let (mut events, mut count) = (String::with_capacity(1 << 16), 0u32);
    let mut at = 0;
    let mut position = 0u64;
    let summary = measure::run(plan, || {
        input.set_shape(1, block);
        input.channel_mut(0).copy_from_slice(&signal[at..at + block]);
        at = if at + 2 * block > signal.len() { 0 } else { at + block };
        events.clear();
        let mut ctx = Ctx { events: &mut events, event_count: &mut count, node_id: "spec", frame: 0, position, to_input_frames: 1.0, origin: 0 };
        node.analyze(&input, &mut ctx);
        position += block as u64;
        events.len()
    });
    let value = summary.calls_per_s * block as f64;
    rows.push(
        Row::new("fft.spectrum_node", "spectrum node (1024/512, 32 bands, 20 ms)", value, "samples/s", summary)
            .target(target)
            .extra("note", json!("per 960-frame block: ~1.9 FFTs, windowing, dB and band averaging, event JSON")),
    );
    rows
}

// ---------------------------------------------------------------------------------------------
// Branch scheduling (docs/pipelines.md `execution.parallel`, `max_workers`, `parallel_safe`)

/// A plan with one cheap audio path and four independent analysis branches of real weight.
fn branches_plan() -> String {
    json!({
        "input": { "sample_rate": 48000, "channels": 1 },
        "nodes": [
            { "id": "g", "type": "gain", "params": { "db": -3 }, "input": null },
            { "id": "spec_a", "type": "spectrum", "params": { "fft_size": 4096, "hop": 256, "bands": 128 }, "input": "g" },
            { "id": "spec_b", "type": "spectrum", "params": { "fft_size": 4096, "hop": 256, "bands": 128 }, "input": "g" },
            { "id": "vad", "type": "vad", "params": {}, "input": "g" },
            { "id": "dtmf", "type": "dtmf", "params": {}, "input": "g" }
        ],
        "output": "g"
    })
    .to_string()
}

/// Four analysis branches, run on the session's worker in plan order (docs/engine.md: no helper threads
/// on the per-frame path), one 20 ms frame per call.
pub fn branches(plan: Plan) -> Vec<Row> {
    let input = s16le(&test_signal(48_000, 1, 10.0));
    let frame_bytes = 960 * 2;
    let chunks: Vec<&[u8]> = input.chunks_exact(frame_bytes).collect();
    let p = GraphPlan::from_json(&branches_plan()).expect("valid plan");
    let encodings = Encodings::pcm(Encoding::S16le, Encoding::S16le);
    let mut s = Session::new(&p, p.input, encodings, 1 << 16).expect("plan builds");
    let mut k = 0u64;
    let summary = measure::run(plan, || {
        s.process(k, chunks[k as usize % chunks.len()]).expect("whole frames");
        k += 1;
        s.events().len()
    });
    let value = summary.calls_per_s;
    let row = Row::new("branches.sequential", "4 analysis branches, on the session's worker", value, "frames/s", summary)
        .extra("frame", json!("20 ms, 48 kHz mono; spectrum 4096/256 x 128 bands, a second spectrum 4096/256 x 128 bands, vad, dtmf"));
    vec![row]
}
