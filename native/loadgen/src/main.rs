//! `rm-loadgen`: a native WebSocket load generator for RemoteMedia's realtime protocol (docs/protocol.md) and
//! for raw echo servers, cheap enough per message that the server, not the generator, is what a run
//! measures. It measures its own CPU (getrusage) and reports it beside every figure.
//!
//! Run `rm-loadgen --help` for the options; `npm run loadtest:stream` drives it.

mod args;
mod audio;
mod ledger;
mod report;
mod rest;
mod run;
mod ws;

use std::net::ToSocketAddrs;
use std::process::ExitCode;

use serde_json::json;

use args::{split_url, Mode, Options, Protocol};
use report::{by_code, percentiles_ms, server_summary};

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) if msg.is_empty() => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("rm-loadgen: {msg}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match generate(&opts) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("rm-loadgen: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn generate(opts: &Options) -> Result<serde_json::Value, String> {
    let nofile = raise_nofile_limit();
    if (nofile as usize) < opts.sessions + 64 {
        return Err(format!(
            "{} sessions need more open files than RLIMIT_NOFILE allows ({nofile})",
            opts.sessions
        ));
    }
    let pipeline = match (&opts.pipeline, &opts.create) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(file)) => Some(rest::create_pipeline(
            opts.api.as_deref().unwrap_or_default(),
            file,
            opts.token.as_deref(),
        )?),
        (None, None) => None,
    };
    let url = match &pipeline {
        Some(id) => opts.url.replace("{id}", id),
        None => opts.url.clone(),
    };
    let (authority, path) = split_url(&url, "ws://")?;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let audio = match &opts.wav {
        Some(file) => audio::wav(file, opts.frame_ms)?,
        None => audio::tone(opts.frame_ms),
    };
    let target = run::Target {
        addr,
        host: authority,
        path,
    };
    let o = run::run(opts, &target, &audio).map_err(|e| format!("event loop: {e}"))?;
    let t = &o.tally;
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    Ok(json!({
        "label": opts.label,
        "url": url,
        "pipeline": pipeline,
        "protocol": match opts.protocol { Protocol::Product => "product", Protocol::Echo => "echo" },
        "mode": match opts.mode { Mode::Paced => "paced", Mode::Closed => "closed" },
        "in_flight": if opts.mode == Mode::Closed { json!(opts.in_flight) } else { json!(null) },
        "frame_ms": opts.frame_ms,
        "frame_bytes": audio.frames[0].len(),
        "input": { "sample_rate": audio.sample_rate, "channels": audio.channels, "file": opts.wav },
        "duration_s": opts.duration.as_secs_f64(),
        "sessions": {
            "requested": opts.sessions,
            "opened": o.opened,
            "held": o.held,
            "refused": by_code(&t.refused),
            "connect_errors": t.connect_errors,
            "closed_early": by_code(&t.closed_early),
        },
        "stream_s": round(o.stream_s, 3),
        "frames": {
            "sent": o.sent,
            "answered": t.answered,
            "lost": o.lost,
            "dropped": t.dropped,
            "frame_errors": t.frame_errors,
            "other_errors": t.other_errors,
            "out_of_order": if opts.protocol == Protocol::Echo { json!(t.out_of_order) } else { json!(null) },
            "unexpected": t.unexpected,
            "events": t.events,
        },
        "answered_per_s": round(o.answered_in_window as f64 / o.stream_s.max(1e-9), 1),
        "rtt": percentiles_ms(&t.rtt_us),
        "rtt_timeline": {
            "bucket_ms": opts.timeline.as_secs_f64() * 1000.0,
            "buckets": t.rtt_timeline_us.iter().map(percentiles_ms).collect::<Vec<_>>(),
        },
        "send_lag": if opts.mode == Mode::Paced { percentiles_ms(&t.send_lag_us) } else { json!(null) },
        "server": server_summary(&t.server_stats),
        "generator": {
            "cpu_pct": round(100.0 * o.cpu_stream_s / o.stream_s.max(1e-9), 1),
            "cpu_s": round(o.cpu_stream_s, 3),
            "cpu_total_s": round(o.cpu_total_s, 3),
            "nofile_limit": nofile,
        },
    }))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (each session is a socket); returns the limit now in force.
fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write the struct they are given.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}
