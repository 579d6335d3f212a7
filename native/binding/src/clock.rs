//! A precise alarm clock for the JS thread. libuv keeps timer time in whole milliseconds, so a
//! `setTimeout` fires anywhere from 0 to about 1.25 ms after it is due; telephony playback must put a
//! chunk on the wire every 20 ms within ±2 ms (docs/telephony/README.md, "Pacing"), and that error
//! alone takes most of the budget. Here one thread sleeps until the earliest armed deadline (a futex
//! wait with nanosecond timeout, timer slack cut to 10 µs) and then wakes the JS thread through a
//! thread-safe function, which libuv delivers at once.
//!
//! ```text
//!  JS: arm(id, delay) ──▶ heap of (deadline, id) ──clock thread sleeps to the earliest──▶ fired ids
//!  JS: on wake ◀── tsfn (at most one call queued) ◀──────────────────────────────────────┘
//!      takeFired() → ids whose deadlines passed, in deadline order
//! ```
//! Ids are the caller's; an id that was cancelled on the JS side simply fires unheard. Not on the
//! per-frame path: the thread does no audio work, only wakes the JS thread.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

/// Wakes the JS thread (weak: an armed clock does not keep Node alive on its own).
type Wake = ThreadsafeFunction<(), (), (), Status, false, true, 1>;

/// Longest delay `arm` accepts, milliseconds (a pacing clock, not a scheduler for the future).
const MAX_DELAY_MS: f64 = 60_000.0;
/// Ids armed at once before `arm` refuses (each live playback holds one).
const MAX_ARMED: usize = 1 << 20;
/// Timer slack of the clock thread, nanoseconds (Linux default: 50 µs).
const TIMER_SLACK_NS: u64 = 10_000;

#[derive(Default)]
struct State {
    armed: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    /// Order of arming, so equal deadlines fire in the order they were armed.
    seq: u64,
    fired: Vec<u32>,
    /// A wake-up is queued for the JS thread and `fired` has not been taken since.
    wake_queued: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A precise alarm clock: `arm(id, delayMs)`; the callback runs on the JS thread soon after a
/// deadline passes, and `takeFired()` returns the ids that are due.
#[napi]
pub struct PreciseClock {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[napi]
impl PreciseClock {
    /// Starts the clock thread. `onFired` runs on the JS thread when armed ids are due.
    #[napi(constructor)]
    pub fn new(#[napi(ts_arg_type = "() => void")] on_fired: Wake) -> napi::Result<PreciseClock> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rm-clock".into())
            .spawn(move || run(&for_thread, &on_fired))
            .map_err(|e| napi::Error::from_reason(format!("clock thread: {e}")))?;
        Ok(PreciseClock { shared, thread: Some(thread) })
    }

    /// Arms `id` to fire `delay_ms` from now (fractions of a millisecond count; negative is now).
    #[napi]
    pub fn arm(&self, id: u32, delay_ms: f64) -> napi::Result<()> {
        if delay_ms.is_nan() || delay_ms > MAX_DELAY_MS {
            return Err(napi::Error::from_reason(format!("delay must be a number of ms up to {MAX_DELAY_MS}")));
        }
        let at = Instant::now() + Duration::from_secs_f64(delay_ms.max(0.0) / 1000.0);
        let mut st = self.shared.state();
        if st.stop {
            return Err(napi::Error::from_reason("the clock is stopped"));
        }
        if st.armed.len() >= MAX_ARMED {
            return Err(napi::Error::from_reason("too many armed ids"));
        }
        let earliest = st.armed.peek().is_none_or(|Reverse((first, _, _))| at < *first);
        st.seq += 1;
        let seq = st.seq;
        st.armed.push(Reverse((at, seq, id)));
        drop(st);
        if earliest {
            self.shared.changed.notify_one();
        }
        Ok(())
    }

    /// The ids whose deadlines have passed since the last call, in deadline order.
    #[napi]
    pub fn take_fired(&self) -> Vec<u32> {
        let mut st = self.shared.state();
        st.wake_queued = false;
        std::mem::take(&mut st.fired)
    }

    /// Ids armed and not yet fired.
    #[napi(getter)]
    pub fn armed(&self) -> u32 {
        self.shared.state().armed.len() as u32
    }

    /// Stops the thread; `arm` fails afterwards.
    #[napi]
    pub fn stop(&mut self) {
        self.shared.state().stop = true;
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PreciseClock {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, wake: &Wake) {
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS as libc::c_ulong, 0, 0, 0);
    }
    let mut st = shared.state();
    loop {
        if st.stop {
            return;
        }
        let now = Instant::now();
        let mut due = false;
        while let Some(&Reverse((at, _, id))) = st.armed.peek() {
            if at > now {
                break;
            }
            st.armed.pop();
            st.fired.push(id);
            due = true;
        }
        if due && !st.wake_queued {
            st.wake_queued = true;
            drop(st);
            // One call at a time is queued (the JS side takes every fired id per call); while Node
            // shuts down the call fails, and nothing is waiting for it any more.
            let _ = wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
            st = shared.state();
            continue;
        }
        st = match st.armed.peek() {
            Some(&Reverse((at, _, _))) => {
                let timeout = at.saturating_duration_since(now);
                shared.changed.wait_timeout(st, timeout).unwrap_or_else(PoisonError::into_inner).0
            }
            None => shared.changed.wait(st).unwrap_or_else(PoisonError::into_inner),
        };
    }
}
