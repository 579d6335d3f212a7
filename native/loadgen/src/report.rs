//! What a run counts, and the JSON report it prints.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Counters and histograms of one run, summed over sessions.
pub struct Tally {
    /// Client round trip: frame handed to the socket → its answer read, µs.
    pub rtt_us: Histogram<u64>,
    /// The same round trips by when in the streaming window their frame was sent, one histogram per
    /// `--timeline-ms` (a tail that comes from a few bad moments — start-up, a pause — reads differently
    /// from one spread over the run).
    pub rtt_timeline_us: Vec<Histogram<u64>>,
    /// Paced mode: how late each send went out against its schedule, µs (the generator's own
    /// saturation signal).
    pub send_lag_us: Histogram<u64>,
    /// Binary answers matched to a frame.
    pub answered: u64,
    /// Frames reported in `dropped` messages.
    pub dropped: u64,
    /// Frames answered with an `error` message.
    pub frame_errors: u64,
    /// `error` messages that name no frame.
    pub other_errors: u64,
    /// Echo only: answers whose bytes name another frame than the one expected.
    pub out_of_order: u64,
    /// Binary messages with no frame outstanding.
    pub unexpected: u64,
    /// `event` messages.
    pub events: u64,
    /// Upgrades refused, by HTTP status.
    pub refused: BTreeMap<u16, u64>,
    /// Sessions that could not connect, upgrade or start in time.
    pub connect_errors: u64,
    /// Sessions the server closed while streaming, by close code (1006 = no close frame).
    pub closed_early: BTreeMap<u16, u64>,
    /// Per-session `stats` messages (docs/protocol.md §5), as sent.
    pub server_stats: Vec<Value>,
}

/// Buckets a round-trip timeline holds at most (~25 KB each).
const MAX_TIMELINE_BUCKETS: usize = 1000;

/// A histogram of µs from 1 µs to 60 s with `figures` significant figures.
fn hist(figures: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, figures).expect("valid histogram bounds")
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally {
            rtt_us: hist(3),
            rtt_timeline_us: Vec::new(),
            send_lag_us: hist(3),
            answered: 0,
            dropped: 0,
            frame_errors: 0,
            other_errors: 0,
            out_of_order: 0,
            unexpected: 0,
            events: 0,
            refused: BTreeMap::new(),
            connect_errors: 0,
            closed_early: BTreeMap::new(),
            server_stats: Vec::new(),
        }
    }

    /// Records one round trip of a frame sent in timeline bucket `bucket`.
    pub fn record_rtt(&mut self, rtt_us: u64, bucket: usize) {
        self.rtt_us.saturating_record(rtt_us);
        // The bound keeps a fine timeline of a long run from growing without end: later frames share
        // the last bucket.
        let bucket = bucket.min(MAX_TIMELINE_BUCKETS - 1);
        while self.rtt_timeline_us.len() <= bucket {
            // Two significant figures are enough to see when the tail happened.
            self.rtt_timeline_us.push(hist(2));
        }
        self.rtt_timeline_us[bucket].saturating_record(rtt_us);
    }
}

/// Percentiles of a µs histogram, in ms.
pub fn percentiles_ms(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p95_ms": ms(h.value_at_quantile(0.95)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// Sums and medians of the servers' own per-session latency (received → answer sent), or null when
/// no session ended with `stats`.
pub fn server_summary(stats: &[Value]) -> Value {
    if stats.is_empty() {
        return Value::Null;
    }
    let sum = |key: &str| {
        stats
            .iter()
            .map(|s| s[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let mut p50: Vec<f64> = stats
        .iter()
        .filter_map(|s| s["latency"]["p50_ms"].as_f64())
        .collect();
    let mut p99: Vec<f64> = stats
        .iter()
        .filter_map(|s| s["latency"]["p99_ms"].as_f64())
        .collect();
    json!({
        "sessions": stats.len(),
        "frames_in": sum("frames_in"),
        "frames_out": sum("frames_out"),
        "frames_dropped": sum("frames_dropped"),
        "p50_ms_median": median(&mut p50),
        "p99_ms_median": median(&mut p99),
        "p99_ms_max": p99.iter().copied().fold(0.0, f64::max),
    })
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// CPU time this process has used so far (user + system), in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Counts by code as a JSON object with string keys.
pub fn by_code(m: &BTreeMap<u16, u64>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_splits_round_trips_by_bucket_and_is_bounded() {
        let mut t = Tally::new();
        t.record_rtt(100, 0);
        t.record_rtt(5_000, 2);
        t.record_rtt(300, 2);
        assert_eq!(t.rtt_us.len(), 3);
        let counts: Vec<u64> = t.rtt_timeline_us.iter().map(|h| h.len()).collect();
        assert_eq!(counts, [1, 0, 2]);
        assert!(t.rtt_timeline_us[2].max() >= 4_990);
        // A frame far past the bound lands in the last bucket instead of growing the timeline.
        t.record_rtt(7, 1_000_000);
        assert_eq!(t.rtt_timeline_us.len(), MAX_TIMELINE_BUCKETS);
        assert_eq!(t.rtt_timeline_us[MAX_TIMELINE_BUCKETS - 1].len(), 1);
    }
}
