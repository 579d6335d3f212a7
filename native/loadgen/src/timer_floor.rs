//! `rm-timer-floor`: how late this machine wakes a thread that sleeps to a deadline, with nothing of
//! RemoteMedia's in the way. It sleeps to absolute deadlines every `--period-ms` (20: one playback
//! chunk) with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` and the timer slack of the server's
//! playback clock, and reports how long after each deadline it ran.
//!
//! Telephony playback (docs/telephony/README.md, "Pacing") sends a chunk every 20 ms and counts one
//! that leaves more than 2 ms after its deadline as late. This is that schedule with the server taken
//! out: run beside a call, it tells a late chunk the machine caused (a virtual CPU woken late, another
//! process on the core) from one the server caused. Output: one JSON object on stdout.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

const USAGE: &str = "rm-timer-floor [--seconds S] [--period-ms P] [--late-ms L] [--slack-ns N]

  --seconds S     how long to run (default 60)
  --period-ms P   the deadline period, ms (default 20: a playback chunk)
  --late-ms L     a wake later than this after its deadline counts as late (default 2)
  --slack-ns N    this thread's timer slack, ns (default 10000: the server's playback clock)
";

#[derive(Debug)]
struct Options {
    seconds: f64,
    period_ms: f64,
    late_ms: f64,
    slack_ns: u64,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options { seconds: 60.0, period_ms: 20.0, late_ms: 2.0, slack_ns: 10_000 };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: f64 = value.parse().map_err(|_| format!("{flag}: not a number: {value}"))?;
        if !number.is_finite() || number <= 0.0 {
            return Err(format!("{flag} must be a positive number"));
        }
        match flag.as_str() {
            "--seconds" => o.seconds = number,
            "--period-ms" => o.period_ms = number,
            "--late-ms" => o.late_ms = number,
            "--slack-ns" => o.slack_ns = number as u64,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.period_ms < 1.0 || o.seconds * 1000.0 / o.period_ms > 10_000_000.0 {
        return Err("--period-ms must be at least 1, and at most 10 million wakes per run".into());
    }
    Ok(o)
}

/// Sleeps until `deadline` on CLOCK_MONOTONIC (the clock `Instant` reads on Linux).
fn sleep_until(deadline: libc::timespec) {
    // SAFETY: clock_nanosleep reads the timespec it is given and writes nothing (remain is null).
    while unsafe {
        libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &deadline, std::ptr::null_mut())
    } == libc::EINTR
    {}
}

fn now() -> libc::timespec {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t
}

fn nanos(t: &libc::timespec) -> i128 {
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

fn timespec(ns: i128) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn main() -> ExitCode {
    let o = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) if msg.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("rm-timer-floor: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, o.slack_ns as libc::c_ulong, 0, 0, 0) };
    let period_ns = (o.period_ms * 1e6) as i128;
    let wakes = (o.seconds * 1000.0 / o.period_ms) as usize;
    let start = now();
    let began = Instant::now();
    let mut lateness_ms = Vec::with_capacity(wakes);
    // Each late wake: when (s from the start) and how late (ms).
    let mut late = Vec::new();
    for k in 1..=wakes {
        let deadline = nanos(&start) + k as i128 * period_ns;
        sleep_until(timespec(deadline));
        let ms = (nanos(&now()) - deadline) as f64 / 1e6;
        lateness_ms.push(ms);
        if ms > o.late_ms {
            late.push(json!({ "at_s": round3((deadline - nanos(&start)) as f64 / 1e9), "late_ms": round3(ms) }));
        }
    }
    let elapsed = began.elapsed().max(Duration::from_nanos(1));
    lateness_ms.sort_by(f64::total_cmp);
    let within = lateness_ms.iter().filter(|&&ms| ms <= o.late_ms).count();
    let report = json!({
        "period_ms": o.period_ms,
        "seconds": round3(elapsed.as_secs_f64()),
        "slack_ns": o.slack_ns,
        "wakes": wakes,
        "late_ms": o.late_ms,
        "within_pct": round3(100.0 * within as f64 / wakes.max(1) as f64),
        "late_wakes": late.len(),
        "lateness_ms": {
            "p50": round3(quantile(&lateness_ms, 0.5)),
            "p99": round3(quantile(&lateness_ms, 0.99)),
            "p999": round3(quantile(&lateness_ms, 0.999)),
            "max": round3(lateness_ms.last().copied().unwrap_or(0.0)),
        },
        "late": late,
    });
    println!("{report}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> impl Iterator<Item = String> + '_ {
        s.split_whitespace().map(String::from)
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 500.0);
        assert_eq!(quantile(&v, 0.99), 990.0);
        assert_eq!(quantile(&v, 0.999), 999.0);
        assert_eq!(quantile(&v, 1.0), 1000.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn options_are_checked() {
        let o = parse(args("--seconds 2 --period-ms 10")).unwrap();
        assert_eq!((o.seconds, o.period_ms, o.late_ms, o.slack_ns), (2.0, 10.0, 2.0, 10_000));
        assert!(parse(args("--seconds")).unwrap_err().contains("needs a value"));
        assert!(parse(args("--seconds -1")).unwrap_err().contains("positive"));
        assert!(parse(args("--seconds NaN")).unwrap_err().contains("positive"));
        assert!(parse(args("--period-ms 0.5")).unwrap_err().contains("at least 1"));
        assert!(parse(args("--bogus 1")).unwrap_err().contains("unknown option"));
        assert_eq!(parse(args("--help")).err(), Some(String::new()));
    }

    #[test]
    fn a_short_run_wakes_after_each_deadline_never_before() {
        let start = now();
        let deadline = nanos(&start) + 5_000_000;
        sleep_until(timespec(deadline));
        assert!(nanos(&now()) >= deadline);
    }
}
