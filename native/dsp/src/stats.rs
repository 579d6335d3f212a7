//! Per-session counters and latency histograms (HDR-style, 2 significant figures, nanosecond values).

use std::sync::{Mutex, PoisonError};

use hdrhistogram::Histogram;

/// Largest value a histogram holds: one minute in nanoseconds; larger values are clamped.
const MAX_NS: u64 = 60_000_000_000;

/// Emptied histograms kept for new sessions, at most (~15 KB each). A session starts with one per node
/// and four more, on the JS thread: a fresh one costs ~10 µs there (its zeroed counts fault in page by
/// page), a kept one a lock. Allocating them with their first value instead put all of that on the
/// workers with the first frames of sessions that start together (docs/engine.md, "Allocation").
const SPARE_HISTOGRAMS: usize = 2048;

static SPARE: Mutex<Vec<Histogram<u32>>> = Mutex::new(Vec::new());

/// A latency histogram in nanoseconds. `None` only while it is being dropped.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Option<Histogram<u32>>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        let spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        // Bounds and precision are constants that `new_with_bounds` accepts.
        LatencyHistogram(Some(spare.unwrap_or_else(|| Histogram::new_with_bounds(1, MAX_NS, 2).expect("valid histogram bounds"))))
    }
}

impl Drop for LatencyHistogram {
    fn drop(&mut self) {
        let Some(mut h) = self.0.take() else { return };
        if SPARE.lock().unwrap_or_else(PoisonError::into_inner).len() >= SPARE_HISTOGRAMS {
            return;
        }
        h.reset();
        let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_HISTOGRAMS {
            spare.push(h);
        }
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
        if let Some(h) = &mut self.0 {
            h.saturating_record(ns.clamp(1, MAX_NS));
        }
    }

    /// Gives the histogram back to the stock: from then on it reads as empty and records nothing.
    pub fn release(&mut self) {
        drop(std::mem::replace(self, LatencyHistogram(None)));
    }

    /// Quantiles in microseconds.
    pub fn percentiles(&self) -> Percentiles {
        let Some(h) = &self.0 else { return Percentiles::default() };
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_us: q(0.5),
            p95_us: q(0.95),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 },
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
    /// Its type's series in the workers' tallies (tally.rs), if it has one.
    pub series: Option<usize>,
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

impl SessionStats {
    /// Gives every histogram back to the stock (the session has ended); the counters stay.
    pub fn release_histograms(&mut self) {
        for h in [&mut self.queue_wait, &mut self.process, &mut self.engine, &mut self.end_to_end] {
            h.release();
        }
        for n in &mut self.nodes {
            n.process.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_without_values_reads_as_empty() {
        let h = LatencyHistogram::default();
        assert_eq!(h.percentiles(), Percentiles::default());
        let mut one = h.clone();
        one.record_ns(2_000);
        assert_eq!(one.percentiles().count, 1);
    }

    #[test]
    fn a_released_histogram_reads_as_empty_and_records_nothing() {
        let mut h = LatencyHistogram::default();
        h.record_ns(5_000);
        h.release();
        assert_eq!(h.percentiles(), Percentiles::default());
        h.record_ns(5_000);
        assert_eq!(h.percentiles().count, 0, "records nothing once released");
    }

    #[test]
    fn the_stock_of_kept_histograms_is_bounded() {
        let many: Vec<LatencyHistogram> = (0..SPARE_HISTOGRAMS + 100).map(|_| LatencyHistogram::default()).collect();
        drop(many);
        let kept = SPARE.lock().unwrap_or_else(PoisonError::into_inner).len();
        assert!(kept <= SPARE_HISTOGRAMS, "{kept} kept");
        assert!(kept > 0);
    }

    #[test]
    fn a_kept_histogram_starts_empty() {
        // Whatever spare a new histogram gets, none of an earlier session's values come with it.
        for _ in 0..3 {
            let used: Vec<LatencyHistogram> = (0..50)
                .map(|k| {
                    let mut h = LatencyHistogram::default();
                    (0..100).for_each(|v| h.record_ns(1_000 + k * v));
                    h
                })
                .collect();
            drop(used);
            for _ in 0..60 {
                let fresh = LatencyHistogram::default();
                assert_eq!(fresh.percentiles(), Percentiles::default());
            }
        }
    }
}
