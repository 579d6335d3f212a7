//! `remotemedia-bench`: the Rust half of `npm run bench:native` (issue 3).
//!
//! Measures the engine against the "Performance Targets" table of the tuning guide this project
//! grew from, and against two baselines in the same run: libsoxr's HQ
//! resampler (with `--features soxr`) and rustfft's complex FFT. Prints a table and writes JSON.
//!
//! ```text
//! remotemedia-bench [--json PATH] [--only pipeline,resample,fft,branches] [--quick] [--label TEXT]
//! ```
//! Every row is warmed up, then timed over at least 5 repetitions: throughput is the median over
//! repetitions, per-call p50/p99/max come from all timed calls.

mod measure;
mod rows;
#[cfg(feature = "soxr")]
mod soxr;

use std::time::Duration;

use serde_json::{json, Value};

use crate::measure::Plan;

/// Command-line options.
struct Options {
    json: Option<String>,
    only: Option<String>,
    quick: bool,
    label: String,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options { json: None, only: None, quick: false, label: "release".into() };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => o.json = Some(args.next().ok_or("--json needs a path")?),
            "--only" => o.only = Some(args.next().ok_or("--only needs pipeline, resample, fft or branches")?),
            "--quick" => o.quick = true,
            "--label" => o.label = args.next().ok_or("--label needs a value")?,
            "-h" | "--help" => {
                println!("remotemedia-bench [--json PATH] [--only pipeline,resample,fft,branches] [--quick] [--label TEXT]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if let Some(only) = &o.only {
        if let Some(bad) = only.split(',').find(|s| !["pipeline", "resample", "fft", "branches"].contains(s)) {
            return Err(format!("--only {bad}: expected pipeline, resample, fft or branches (comma-separated)"));
        }
    }
    Ok(o)
}

/// The build this binary is: profile and target CPU features that matter to the DSP loops.
fn build_info(label: &str) -> Value {
    let mut features = Vec::new();
    if cfg!(target_feature = "avx2") {
        features.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        features.push("fma");
    }
    if cfg!(target_feature = "avx512f") {
        features.push("avx512f");
    }
    json!({
        "label": label,
        "debug_assertions": cfg!(debug_assertions),
        "target_features": features,
        "soxr": cfg!(feature = "soxr"),
        "soxr_version": soxr_version(),
    })
}

#[cfg(feature = "soxr")]
fn soxr_version() -> Value {
    Value::String(soxr::version())
}

#[cfg(not(feature = "soxr"))]
fn soxr_version() -> Value {
    Value::Null
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("remotemedia-bench: {e}");
            std::process::exit(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    let plan = if opts.quick {
        Plan { warmup: Duration::from_millis(100), reps: 5, rep_time: Duration::from_millis(100), min_calls: 200 }
    } else {
        Plan { warmup: Duration::from_millis(300), reps: 7, rep_time: Duration::from_millis(300), min_calls: 1000 }
    };
    let clock_ns = measure::clock_overhead_ns();
    let build = build_info(&opts.label);
    println!("remotemedia-bench ({}; {})", opts.label, build["target_features"]);
    if !cfg!(feature = "soxr") {
        println!("libsoxr baseline: not built (no --features soxr); resample rows have no soxr ratio");
    }
    println!("clock read: {clock_ns:.1} ns (included once per timed call)\n");

    let wanted = |s: &str| opts.only.as_deref().is_none_or(|o| o.split(',').any(|x| x == s));
    let mut out: Vec<rows::Row> = Vec::new();
    let mut breakdown = Value::Null;
    if wanted("pipeline") {
        let (rows, nodes) = rows::pipeline(plan);
        out.extend(rows);
        out.push(rows::normalize(plan));
        out.extend(rows::sessions_in_turn(plan));
        breakdown = nodes;
    }
    if wanted("resample") {
        out.extend(rows::resample(plan));
    }
    if wanted("fft") {
        out.extend(rows::fft(plan));
    }
    if wanted("branches") {
        out.extend(rows::branches(plan));
    }
    rows::print_table(&out);
    rows::print_breakdown(&breakdown);

    if let Some(path) = &opts.json {
        let doc = json!({
            "build": build,
            "clock_overhead_ns": clock_ns,
            "method": format!(
                "warm-up {} ms, {} repetitions of >= {} ms and >= {} calls; throughput = median over repetitions; \
                 latency percentiles over all timed calls (one clock read per call included)",
                plan.warmup.as_millis(), plan.reps, plan.rep_time.as_millis(), plan.min_calls
            ),
            "rows": out.iter().map(rows::Row::to_json).collect::<Vec<_>>(),
            "pipeline_node_breakdown": breakdown,
        });
        if let Some(dir) = std::path::Path::new(path).parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let text = serde_json::to_string_pretty(&doc).expect("serialisable");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("remotemedia-bench: writing {path}: {e}");
            std::process::exit(1);
        }
        println!("\nwrote {path}");
    }
}
