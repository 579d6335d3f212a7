//! Per-session counters and latency histograms (HDR-style, 2 significant figures, nanosecond values).

use hdrhistogram::Histogram;

/// Largest value a histogram holds: one minute in nanoseconds; larger values are clamped.
const MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Histogram<u32>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        // Bounds and precision are constants that `new_with_bounds` accepts.
        LatencyHistogram(Histogram::new_with_bounds(1, MAX_NS, 2).expect("valid histogram bounds"))
    }
}

/// Percentiles of a histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl LatencyHistogram {
    /// Records one value; does not allocate.
    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// How many values were at or below each bound (cumulative, like Prometheus `le` buckets), within
    /// the histogram's 1% precision, and the sum of all values in nanoseconds (from the bucket midpoints).
    pub fn cumulative_counts(&self, bounds_ns: &[u64]) -> (Vec<u64>, f64) {
        let counts = bounds_ns.iter().map(|&b| self.0.count_between(0, b.clamp(1, MAX_NS))).collect();
        let sum = self.0.mean() * self.0.len() as f64;
        (counts, sum)
    }

    /// Quantiles in microseconds.
    pub fn percentiles(&self) -> Percentiles {
        let q = |p: f64| self.0.value_at_quantile(p) as f64 / 1000.0;
        Percentiles {
            count: self.0.len(),
            p50_us: q(0.5),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if self.0.is_empty() { 0.0 } else { self.0.max() as f64 / 1000.0 },
        }
    }
}

/// One node's processing time per message.
#[derive(Clone, Debug)]
pub struct NodeStats {
    /// Node (or fused stage) id.
    pub id: String,
    /// Its type.
    pub node_type: &'static str,
    /// Time per message.
    pub process: LatencyHistogram,
}

/// Everything measured about one session.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    /// Binary messages accepted.
    pub frames_in: u64,
    /// Binary answers produced.
    pub frames_out: u64,
    /// Messages dropped because the queue held more than its limit.
    pub frames_dropped: u64,
    /// Messages rejected as malformed.
    pub frame_errors: u64,
    /// Events emitted.
    pub events: u64,
    /// Sample frames received.
    pub samples_in: u64,
    /// Non-finite input samples (NaN, ±Inf) replaced by 0 (docs/audio.md).
    pub non_finite_samples: u64,
    /// Time from hand-off to the worker until processing started.
    pub queue_wait: LatencyHistogram,
    /// Decode + graph + encode time per message.
    pub process: LatencyHistogram,
    /// Hand-off to the worker until the answer was ready for delivery.
    pub engine: LatencyHistogram,
    /// Message received by the host until its answer was sent (recorded by the host).
    pub end_to_end: LatencyHistogram,
    /// Per node.
    pub nodes: Vec<NodeStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_counts_follow_the_recorded_values() {
        let mut h = LatencyHistogram::default();
        for ns in [1_000, 2_000, 2_000, 50_000, 3_000_000] {
            h.record_ns(ns);
        }
        let (counts, sum) = h.cumulative_counts(&[500, 1_500, 10_000, 100_000, 10_000_000]);
        assert_eq!(counts, vec![0, 1, 3, 4, 5]);
        assert!((sum - 3_055_000.0).abs() / 3_055_000.0 < 0.01, "{sum}");
    }

    #[test]
    fn a_histogram_without_values_reads_as_empty() {
        let h = LatencyHistogram::default();
        assert_eq!(h.percentiles(), Percentiles::default());
        assert_eq!(h.cumulative_counts(&[1_000, 1_000_000]), (vec![0, 0], 0.0));
        let mut one = h.clone();
        one.record_ns(2_000);
        assert_eq!(one.percentiles().count, 1);
        assert_eq!(one.cumulative_counts(&[1_000, 1_000_000]).0, vec![0, 1]);
    }
}
