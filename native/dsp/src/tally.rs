//! The engine's Prometheus histograms (docs/rest.md, `GET /metrics`): queue wait, per-node processing
//! time and the workers' waits for the host to take their answers, counted at fixed bucket bounds by
//! each worker as it records a session's own HDR histograms.
//!
//! A scrape reads one tally per worker, whatever the number of sessions. Reading every session's HDR
//! histograms instead cost ~0.3 ms per five-node session on the JS thread (a clone and 17 range counts
//! per histogram): 150 ms per scrape at 500 sessions, during which no frame was answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Upper bounds of the buckets, nanoseconds: 5 µs to 1 s (a last bucket above takes the rest).
pub const TALLY_BOUNDS_NS: [u64; 17] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Node types a tally tells apart: more than the engine has (docs/pipelines.md lists them).
const MAX_TYPES: usize = 64;

/// Node types in the order they were first tallied; a type's index is its series in every tally.
static TYPES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// The series of `node_type` in every [`Tally`], registered on first use. None once [`MAX_TYPES`]
/// types are registered (the type then goes untallied; its sessions' own histograms still count it).
pub fn series_of(node_type: &'static str) -> Option<usize> {
    register(&mut TYPES.lock().unwrap_or_else(PoisonError::into_inner), node_type, MAX_TYPES)
}

fn register(types: &mut Vec<&'static str>, node_type: &'static str, max: usize) -> Option<usize> {
    if let Some(k) = types.iter().position(|&t| t == node_type) {
        return Some(k);
    }
    if types.len() >= max {
        return None;
    }
    types.push(node_type);
    Some(types.len() - 1)
}

/// Observations of one series: per bucket (not cumulative) and their sum.
struct Series {
    buckets: [AtomicU64; TALLY_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Series {
    fn new() -> Series {
        Series { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_ns: AtomicU64::new(0) }
    }

    /// One writer per tally (its worker), so a load and a store suffice; readers see each counter whole.
    fn record(&self, ns: u64) {
        let b = TALLY_BOUNDS_NS.partition_point(|&bound| bound < ns);
        bump(&self.buckets[b], 1);
        bump(&self.sum_ns, ns);
    }

    fn add_to(&self, into: &mut TallyCounts) {
        let mut below = 0;
        for (b, bucket) in self.buckets.iter().enumerate() {
            below += bucket.load(Ordering::Relaxed);
            if let Some(c) = into.cumulative.get_mut(b) {
                *c += below;
            }
        }
        into.count += below;
        into.sum_ns += self.sum_ns.load(Ordering::Relaxed);
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
}

/// One worker's counts since the pool started. Only that worker records into it.
pub struct Tally {
    queue_wait: Series,
    handback_wait: Series,
    nodes: Box<[Series]>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            queue_wait: Series::new(),
            handback_wait: Series::new(),
            nodes: (0..MAX_TYPES).map(|_| Series::new()).collect(),
        }
    }
}

impl Tally {
    /// A frame's wait in its session queue.
    pub fn queue_wait(&self, ns: u64) {
        self.queue_wait.record(ns);
    }

    /// A wait of the worker, its batch full, for the host to take the batch before it (docs/engine.md,
    /// "Copies"): frames wait in their queues meanwhile.
    pub fn handback_wait(&self, ns: u64) {
        self.handback_wait.record(ns);
    }

    /// A node's processing time for one frame; `series` from [`series_of`].
    pub fn node(&self, series: usize, ns: u64) {
        if let Some(s) = self.nodes.get(series) {
            s.record(ns);
        }
    }
}

/// Cumulative counts at [`TALLY_BOUNDS_NS`] (Prometheus `le` buckets), the total, and the exact sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TallyCounts {
    /// Observations at or below each bound.
    pub cumulative: [u64; TALLY_BOUNDS_NS.len()],
    /// All observations.
    pub count: u64,
    /// Their sum, nanoseconds.
    pub sum_ns: u64,
}

/// Every worker's tallies added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineTally {
    /// Frames' waits in their session queues.
    pub queue_wait: TallyCounts,
    /// Workers' waits, with a full batch, for the host to take the one before it.
    pub handback_wait: TallyCounts,
    /// Node types with at least one observation, in registration order.
    pub nodes: Vec<(&'static str, TallyCounts)>,
}

impl EngineTally {
    /// Adds up `tallies`.
    pub fn sum<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> EngineTally {
        let types = TYPES.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut out = EngineTally {
            queue_wait: TallyCounts::default(),
            handback_wait: TallyCounts::default(),
            nodes: types.iter().map(|&t| (t, TallyCounts::default())).collect(),
        };
        for t in tallies {
            t.queue_wait.add_to(&mut out.queue_wait);
            t.handback_wait.add_to(&mut out.handback_wait);
            for ((_, counts), series) in out.nodes.iter_mut().zip(t.nodes.iter()) {
                series.add_to(counts);
            }
        }
        out.nodes.retain(|(_, c)| c.count > 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        let t = Tally::default();
        // At a bound counts as within it (Prometheus `le`); above the last bound only in the count.
        let values: [u64; 7] = [1, 5_000, 5_001, 1_000_000, 1_000_000_000, 1_000_000_001, u64::MAX / 4];
        for ns in values {
            t.queue_wait(ns);
        }
        let sum = EngineTally::sum([&t]);
        let c = &sum.queue_wait;
        assert_eq!(c.cumulative[0], 2, "1 ns and 5 µs");
        assert_eq!(c.cumulative[1], 3, "5.001 µs");
        assert_eq!(c.cumulative[7], 4, "1 ms");
        assert_eq!(c.cumulative[16], 5, "1 s");
        assert_eq!(c.count, 7);
        assert_eq!(c.sum_ns, values.iter().sum::<u64>());
        assert!(c.cumulative.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn workers_add_up_and_types_without_observations_are_left_out() {
        let (a, b) = (Tally::default(), Tally::default());
        let gain = series_of("tally-test-gain").unwrap();
        let vad = series_of("tally-test-vad").unwrap();
        let unused = series_of("tally-test-unused").unwrap();
        assert_eq!(series_of("tally-test-gain"), Some(gain), "one series per type");
        a.node(gain, 3_000);
        b.node(gain, 40_000);
        b.node(vad, 700_000);
        let sum = EngineTally::sum([&a, &b]);
        let find = |name: &str| sum.nodes.iter().find(|(t, _)| *t == name).map(|(_, c)| c.clone());
        let g = find("tally-test-gain").unwrap();
        assert_eq!((g.count, g.sum_ns, g.cumulative[0], g.cumulative[3]), (2, 43_000, 1, 2));
        assert_eq!(find("tally-test-vad").unwrap().count, 1);
        assert_eq!(find("tally-test-unused"), None);
        a.node(unused, 1);
        assert_eq!(EngineTally::sum([&a]).nodes.iter().filter(|(t, _)| *t == "tally-test-unused").count(), 1);
    }

    #[test]
    fn the_types_a_tally_tells_apart_are_bounded() {
        let names = ["a", "b", "c", "d"];
        let mut types = Vec::new();
        let results: Vec<Option<usize>> = names.iter().map(|&n| register(&mut types, n, 3)).collect();
        assert_eq!(results, vec![Some(0), Some(1), Some(2), None]);
        assert_eq!(register(&mut types, "b", 3), Some(1), "a registered type keeps its series when full");
        // An untallied type records nothing and breaks nothing.
        let t = Tally::default();
        t.node(MAX_TYPES + 3, 1_000);
        assert_eq!(EngineTally::sum([&t]).queue_wait.count, 0);
    }
}
