//! Timing: warm up, then repetitions of many timed calls; throughput is the median over
//! repetitions, latency percentiles come from every call of every repetition.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed calls before the first repetition, at least this long.
    pub warmup: Duration,
    /// Repetitions (at least 5 for a median).
    pub reps: usize,
    /// Each repetition runs at least this long…
    pub rep_time: Duration,
    /// …and at least this many calls.
    pub min_calls: usize,
}

/// What one benchmark measured.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Calls per second, median over repetitions.
    pub calls_per_s: f64,
    /// Calls per second of every repetition, in order.
    pub rep_calls_per_s: Vec<f64>,
    /// Per-call latency percentiles over all calls, nanoseconds.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
    /// Slowest call.
    pub max_ns: f64,
    /// Calls timed.
    pub calls: usize,
}

impl Summary {
    /// Median per-call time derived from throughput, nanoseconds.
    pub fn mean_ns(&self) -> f64 {
        1e9 / self.calls_per_s
    }
}

/// Median of a non-empty slice (sorts it).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Runs `f` per [`Plan`]. Each call is timed by one clock read after it (the previous read starts
/// it), so the loop's wall time is the sum of the per-call times and the timer costs one read.
pub fn run<R>(plan: Plan, mut f: impl FnMut() -> R) -> Summary {
    warm_up(plan, &mut f);
    let mut timed = Timed::default();
    for _ in 0..plan.reps.max(1) {
        timed.rep(plan, &mut f);
    }
    timed.summary()
}

/// Runs `a` and `b` per [`Plan`] with their repetitions interleaved (a b, b a, a b, …), so that
/// whatever else the machine does while they run (other processes, frequency changes) falls on
/// both alike: for a same-run ratio of two throughputs. Each summary is as [`run`] gives it.
pub fn run_pair<A, B>(plan: Plan, mut a: impl FnMut() -> A, mut b: impl FnMut() -> B) -> (Summary, Summary) {
    warm_up(plan, &mut a);
    warm_up(plan, &mut b);
    let (mut ta, mut tb) = (Timed::default(), Timed::default());
    for k in 0..plan.reps.max(1) {
        if k % 2 == 0 {
            ta.rep(plan, &mut a);
            tb.rep(plan, &mut b);
        } else {
            tb.rep(plan, &mut b);
            ta.rep(plan, &mut a);
        }
    }
    (ta.summary(), tb.summary())
}

fn warm_up<R>(plan: Plan, f: &mut impl FnMut() -> R) {
    let start = Instant::now();
    while start.elapsed() < plan.warmup {
        for _ in 0..16 {
            black_box(f());
        }
    }
}

/// Per-call times and per-repetition rates gathered so far.
#[derive(Default)]
struct Timed {
    all: Vec<u64>,
    rates: Vec<f64>,
}

impl Timed {
    /// One repetition: at least `plan.min_calls` calls and `plan.rep_time`.
    fn rep<R>(&mut self, plan: Plan, f: &mut impl FnMut() -> R) {
        let mut lat: Vec<u64> = Vec::with_capacity(plan.min_calls.max(1024));
        let t0 = Instant::now();
        let mut prev = t0;
        loop {
            black_box(f());
            let now = Instant::now();
            lat.push((now - prev).as_nanos() as u64);
            prev = now;
            if lat.len() >= plan.min_calls && now - t0 >= plan.rep_time {
                break;
            }
        }
        let secs = (prev - t0).as_secs_f64();
        self.rates.push(lat.len() as f64 / secs);
        self.all.extend_from_slice(&lat);
    }

    fn summary(mut self) -> Summary {
        self.all.sort_unstable();
        let all = &self.all;
        Summary {
            calls_per_s: median(&mut self.rates.clone()),
            rep_calls_per_s: self.rates,
            p50_ns: percentile(all, 50.0),
            p99_ns: percentile(all, 99.0),
            p999_ns: percentile(all, 99.9),
            max_ns: all.last().copied().unwrap_or(0) as f64,
            calls: all.len(),
        }
    }
}

/// Cost of one clock read, nanoseconds (median of 5 runs of 100k reads), to put latencies of
/// sub-microsecond calls in proportion.
pub fn clock_overhead_ns() -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..100_000 {
                black_box(Instant::now());
            }
            t0.elapsed().as_nanos() as f64 / 100_000.0
        })
        .collect();
    median(&mut runs)
}
