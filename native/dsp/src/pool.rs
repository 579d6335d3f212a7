//! The worker pool (SPEC §5): `workers` threads, optionally pinned to cores, each owning the
//! sessions assigned to it.
//!
//! ```text
//!  push(frame) ─▶ slot.queue (bounded by audio time, drop-oldest) ─▶ worker k's channel gets the
//!                                                                   slot once ("scheduled" flag)
//!  worker k: pop one item ─▶ process (catch_unwind) ─▶ outbox ─▶ Sink::deliver(batch) when idle
//!            or when the outbox is full; a slot with more queued items goes to the back of the
//!            channel, so sessions on one worker take turns message by message.
//! ```
//! A session lives on one worker for its whole life, so its messages are processed in order with
//! its state hot in that core's cache. A panic inside a session ends that session only.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvError, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::session::Session;
use crate::stats::{NodeStats, SessionStats};

/// Most outputs a worker collects before delivering them, even when more work is waiting.
const MAX_BATCH: usize = 64;

/// How often an idle worker beats; a busy one beats between items. A worker whose last beat is
/// much older than this is stuck in one item (or gone).
const BEAT_INTERVAL: Duration = Duration::from_millis(100);

/// A worker's heartbeat: the time of its last beat, in milliseconds since the pool started.
#[derive(Clone)]
struct Heartbeat {
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    fn beat(&self) {
        self.last_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Milliseconds since the last beat.
    fn since_ms(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64).saturating_sub(self.last_ms.load(Ordering::Relaxed))
    }
}

/// What a worker hands back to the host.
#[derive(Debug)]
pub struct Output {
    /// The session.
    pub session: u64,
    /// What happened.
    pub kind: OutputKind,
    /// The message number this answers (SPEC §4.4), when it answers one.
    pub frame: Option<u64>,
    /// Encoded audio (answers and flush tails).
    pub audio: Vec<u8>,
    /// Event messages, one JSON text per line.
    pub events: String,
    /// Error code and message, for `Error` and `Failed`.
    pub error: Option<(&'static str, String)>,
    /// Request tag of a control item (params), echoed back.
    pub tag: u32,
}

/// Kinds of [`Output`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// The answer to one binary message.
    Audio,
    /// A malformed message: no answer audio, the session goes on (SPEC §4.7).
    FrameError,
    /// The tail after `flush` (audio may be empty).
    Flushed,
    /// A live parameter change was applied (or rejected: `error` set).
    ParamsApplied,
    /// The session stopped after its final flush (`stop`), and is gone from the worker.
    Stopped,
    /// The session died (a node panicked); it is gone from the worker.
    Failed,
}

/// Receives finished outputs on a worker thread. Implementations must not block for long.
pub trait Sink: Send + Sync + 'static {
    /// Takes a batch of outputs, in order per session.
    fn deliver(&self, batch: Vec<Output>);
}

enum Item {
    Frame { frame: u64, bytes: Vec<u8>, samples: u64, received: Instant },
    Params { node: String, params: Vec<(String, Value)>, tag: u32 },
    Flush,
    Stop,
}

struct SlotState {
    items: VecDeque<Item>,
    /// Sample frames of audio waiting in `items`.
    queued_samples: u64,
    scheduled: bool,
    /// No more pushes or controls are accepted (stopping, stopped, failed or closed).
    closed: bool,
    /// Closed by the host while a worker held the session: the worker drops it.
    discarded: bool,
    session: Option<Box<Session>>,
    /// Message buffers returned by the worker, reused by `push`.
    free: Vec<Vec<u8>>,
    stats: SessionStats,
}

/// One session's place in the pool: its queue, state and stats.
pub struct Slot {
    id: u64,
    worker: usize,
    /// Queue bound in sample frames (SPEC §1 `SESSION_QUEUE_MS`).
    queue_limit_samples: u64,
    /// Bytes per sample frame of the input encoding.
    frame_bytes: usize,
    next_frame: AtomicU64,
    state: Mutex<SlotState>,
}

/// Why a push or control was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushError {
    /// The session has stopped, failed or been closed.
    Closed,
}

/// What `push` did with a message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The message's number.
    pub frame: u64,
    /// Older messages dropped to make room (their numbers), oldest first.
    pub dropped: Vec<u64>,
}

impl Slot {
    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The worker the session lives on.
    pub fn worker(&self) -> usize {
        self.worker
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A poisoned lock means a panic while holding it; the state is plain data and stays usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of the session's counters and histograms.
    pub fn stats(&self) -> SessionStats {
        self.lock().stats.clone()
    }

    /// Records the host-side latency of one message (received → answer sent).
    pub fn record_end_to_end(&self, ns: u64) {
        self.lock().stats.end_to_end.record_ns(ns);
    }

    /// Whether the session has ended (stopped, failed or closed).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

enum Msg {
    Run(Arc<Slot>),
    Shutdown,
}

/// Facts about one worker thread.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// Index.
    pub index: usize,
    /// The core it was asked to run on.
    pub core: Option<usize>,
    /// Whether pinning succeeded.
    pub pinned: bool,
    /// Sessions living on it.
    pub sessions: usize,
    /// Milliseconds since its loop last beat (see `BEAT_INTERVAL`): large means stuck or dead.
    pub since_beat_ms: u64,
}

struct WorkerHandle {
    tx: Sender<Msg>,
    join: Mutex<Option<JoinHandle<()>>>,
    core: Option<usize>,
    pinned: Arc<std::sync::atomic::AtomicBool>,
    sessions: Arc<AtomicUsize>,
    heart: Heartbeat,
}

/// The pool of worker threads.
pub struct Pool {
    workers: Vec<WorkerHandle>,
    next_id: AtomicU64,
}

impl Pool {
    /// Starts `workers` threads; with `pin_cores`, worker k is pinned to the k-th core (round robin).
    /// A failure to pin is reported in [`Pool::workers`], not fatal.
    pub fn new(workers: usize, pin_cores: bool, sink: Arc<dyn Sink>) -> Pool {
        let cores = if pin_cores { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
        let epoch = Instant::now();
        let handles = (0..workers.max(1))
            .map(|k| {
                let (tx, rx) = channel();
                let core = cores.get(k % cores.len().max(1)).copied();
                let pinned = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let sessions = Arc::new(AtomicUsize::new(0));
                let heart = Heartbeat { epoch, last_ms: Arc::new(AtomicU64::new(0)) };
                let (own_tx, sink, pinned_flag, sessions_count) = (tx.clone(), sink.clone(), pinned.clone(), sessions.clone());
                let worker_heart = heart.clone();
                let (ready_tx, ready_rx) = channel();
                let join = std::thread::Builder::new()
                    .name(format!("rm-worker-{k}"))
                    .spawn(move || {
                        // Only ids that get_core_ids returned are passed: core_affinity aborts on others.
                        let ok = core.is_some_and(core_affinity::set_for_current);
                        pinned_flag.store(ok, Ordering::Relaxed);
                        // nnnoiseless caches FFT plans per thread; build them now, not on a live frame.
                        crate::nodes::denoise::prepare_thread();
                        let _ = ready_tx.send(());
                        worker_loop(rx, own_tx, sink, sessions_count, worker_heart);
                    })
                    .expect("spawn worker thread");
                let _ = ready_rx.recv();
                WorkerHandle { tx, join: Mutex::new(Some(join)), core: core.map(|c| c.id), pinned, sessions, heart }
            })
            .collect();
        Pool { workers: handles, next_id: AtomicU64::new(1) }
    }

    /// Facts about every worker.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.workers
            .iter()
            .enumerate()
            .map(|(index, w)| WorkerInfo {
                index,
                core: w.core,
                pinned: w.pinned.load(Ordering::Relaxed),
                sessions: w.sessions.load(Ordering::Relaxed),
                since_beat_ms: w.heart.since_ms(),
            })
            .collect()
    }

    /// Places a built session on the least-loaded worker. `queue_limit_samples` bounds its queue
    /// (`u64::MAX` for batch jobs, which must lose nothing).
    pub fn add_session(&self, session: Session, queue_limit_samples: u64, frame_bytes: usize) -> Arc<Slot> {
        // Least loaded, preferring workers that beat lately over one stuck in an item.
        let stuck = |k: usize| self.workers[k].heart.since_ms() > 10 * BEAT_INTERVAL.as_millis() as u64;
        let worker = (0..self.workers.len())
            .min_by_key(|&k| (stuck(k), self.workers[k].sessions.load(Ordering::Relaxed)))
            .unwrap_or(0);
        self.workers[worker].sessions.fetch_add(1, Ordering::Relaxed);
        let nodes = session
            .graph()
            .node_timings()
            .map(|(id, node_type, _)| NodeStats { id: id.to_string(), node_type, process: Default::default() })
            .collect();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Slot {
            id,
            worker,
            queue_limit_samples,
            frame_bytes,
            next_frame: AtomicU64::new(0),
            state: Mutex::new(SlotState {
                items: VecDeque::new(),
                queued_samples: 0,
                scheduled: false,
                closed: false,
                discarded: false,
                session: Some(Box::new(session)),
                free: Vec::new(),
                stats: SessionStats { nodes, ..Default::default() },
            }),
        })
    }

    /// Queues one binary message (copied once, into a pooled buffer). When the queue then holds more
    /// audio than its limit, the oldest queued messages are dropped and named in the result
    /// (SPEC §4.7). The message itself is always queued. A message with a partial sample frame is
    /// queued too and answered with an error in order.
    pub fn push(&self, slot: &Arc<Slot>, bytes: &[u8]) -> Result<Pushed, PushError> {
        let samples = (bytes.len() / slot.frame_bytes.max(1)) as u64;
        let received = Instant::now();
        let mut st = slot.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        let frame = slot.next_frame.fetch_add(1, Ordering::Relaxed);
        let mut buf = st.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        st.items.push_back(Item::Frame { frame, bytes: buf, samples, received });
        st.queued_samples += samples;
        st.stats.frames_in += 1;
        st.stats.samples_in += samples;
        let mut dropped = Vec::new();
        while st.queued_samples > slot.queue_limit_samples {
            // Drop the oldest audio message that is not the one just queued; control items stay.
            let Some(pos) = st.items.iter().position(|it| matches!(it, Item::Frame { .. })) else { break };
            if pos == st.items.len() - 1 {
                break;
            }
            if let Some(Item::Frame { frame, bytes, samples, .. }) = st.items.remove(pos) {
                st.queued_samples -= samples;
                st.stats.frames_dropped += 1;
                st.free.push(bytes);
                dropped.push(frame);
            }
        }
        self.schedule(slot, &mut st);
        Ok(Pushed { frame, dropped })
    }

    fn control(&self, slot: &Arc<Slot>, item: Item) -> Result<(), PushError> {
        let mut st = slot.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        let ends = matches!(item, Item::Stop);
        st.items.push_back(item);
        if ends {
            // Nothing may follow a stop.
            st.closed = true;
        }
        self.schedule(slot, &mut st);
        Ok(())
    }

    /// Live parameter changes for one node, applied between messages in arrival order.
    pub fn set_params(&self, slot: &Arc<Slot>, node: String, params: Vec<(String, Value)>, tag: u32) -> Result<(), PushError> {
        self.control(slot, Item::Params { node, params, tag })
    }

    /// Emits the remaining tail after everything queued so far.
    pub fn flush(&self, slot: &Arc<Slot>) -> Result<(), PushError> {
        self.control(slot, Item::Flush)
    }

    /// Flushes, then ends the session (an `Stopped` output follows the `Flushed` one).
    pub fn stop(&self, slot: &Arc<Slot>) -> Result<(), PushError> {
        self.control(slot, Item::Stop)
    }

    /// Ends the session at once, discarding whatever is queued (client gone).
    pub fn close(&self, slot: &Arc<Slot>) {
        let mut st = slot.lock();
        st.items.clear();
        st.queued_samples = 0;
        st.closed = true;
        st.discarded = true;
        if st.session.take().is_some() {
            self.workers[slot.worker].sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn schedule(&self, slot: &Arc<Slot>, st: &mut SlotState) {
        if !st.scheduled {
            st.scheduled = true;
            let _ = self.workers[slot.worker].tx.send(Msg::Run(slot.clone()));
        }
    }

    /// Sessions still registered with workers.
    pub fn session_count(&self) -> usize {
        self.workers.iter().map(|w| w.sessions.load(Ordering::Relaxed)).sum()
    }
}

impl Pool {
    /// Stops every worker after the work already queued to it, and waits for them. Sessions that
    /// are still open get no further answers. Safe to call more than once.
    pub fn shutdown(&self) {
        for w in &self.workers {
            let _ = w.tx.send(Msg::Shutdown);
        }
        for w in &self.workers {
            let handle = w.join.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(j) = handle {
                let _ = j.join();
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker_loop(rx: Receiver<Msg>, own_tx: Sender<Msg>, sink: Arc<dyn Sink>, sessions: Arc<AtomicUsize>, heart: Heartbeat) {
    let mut outbox: Vec<Output> = Vec::with_capacity(MAX_BATCH);
    let mut next = recv_beating(&rx, &heart);
    loop {
        heart.beat();
        match next {
            Ok(Msg::Run(slot)) => run_one(&slot, &own_tx, &mut outbox, &sessions),
            Ok(Msg::Shutdown) | Err(_) => {
                if !outbox.is_empty() {
                    sink.deliver(std::mem::take(&mut outbox));
                }
                return;
            }
        }
        next = match rx.try_recv() {
            Ok(msg) => {
                if outbox.len() >= MAX_BATCH {
                    sink.deliver(std::mem::replace(&mut outbox, Vec::with_capacity(MAX_BATCH)));
                }
                Ok(msg)
            }
            Err(TryRecvError::Empty) => {
                if !outbox.is_empty() {
                    sink.deliver(std::mem::replace(&mut outbox, Vec::with_capacity(MAX_BATCH)));
                }
                recv_beating(&rx, &heart)
            }
            Err(TryRecvError::Disconnected) => Err(RecvError),
        };
    }
}

/// Waits for the next message, beating every `BEAT_INTERVAL` while idle.
fn recv_beating(rx: &Receiver<Msg>, heart: &Heartbeat) -> Result<Msg, RecvError> {
    loop {
        heart.beat();
        match rx.recv_timeout(BEAT_INTERVAL) {
            Ok(msg) => return Ok(msg),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Err(RecvError),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "node panicked".to_string())
}

fn output(session: u64, kind: OutputKind, frame: Option<u64>) -> Output {
    Output { session, kind, frame, audio: Vec::new(), events: String::new(), error: None, tag: 0 }
}

/// Takes one item of `slot`, processes it, and reschedules the slot if more are waiting.
fn run_one(slot: &Arc<Slot>, own_tx: &Sender<Msg>, outbox: &mut Vec<Output>, sessions: &AtomicUsize) {
    let (item, session) = {
        let mut st = slot.lock();
        let item = st.items.pop_front();
        if let Some(Item::Frame { samples, .. }) = &item {
            st.queued_samples -= samples;
        }
        match (item, st.session.take()) {
            (Some(item), Some(session)) => (item, session),
            (_, session) => {
                // Nothing to do, or the session was closed meanwhile.
                st.session = session;
                st.scheduled = false;
                return;
            }
        }
    };
    let mut session = session;
    let started = Instant::now();
    let mut keep = true;
    let mut returned: Option<Vec<u8>> = None;
    let mut timing: Option<(Instant, std::time::Duration)> = None;
    let result = catch_unwind(AssertUnwindSafe(|| match item {
        Item::Frame { frame, bytes, received, .. } => {
            let out = match session.process(frame, &bytes) {
                Ok(()) => {
                    let mut o = output(slot.id, OutputKind::Audio, Some(frame));
                    o.audio = session.output().to_vec();
                    o.events = session.events().to_string();
                    o
                }
                Err(e) => {
                    let mut o = output(slot.id, OutputKind::FrameError, Some(frame));
                    o.error = Some(("RM_ERR_BAD_FRAME", e.to_string()));
                    o
                }
            };
            returned = Some(bytes);
            timing = Some((received, started.duration_since(received)));
            vec![out]
        }
        Item::Params { node, params, tag } => {
            let mut o = output(slot.id, OutputKind::ParamsApplied, None);
            o.tag = tag;
            for (name, value) in &params {
                if let Err(e) = session.graph_mut().set_param(&node, name, value) {
                    o.error = Some(("RM_ERR_BAD_PARAMS", e.to_string()));
                    break;
                }
            }
            vec![o]
        }
        Item::Flush | Item::Stop => {
            let stop = matches!(item, Item::Stop);
            let frame = slot.next_frame.load(Ordering::Relaxed);
            session.flush(frame);
            let mut o = output(slot.id, OutputKind::Flushed, None);
            o.audio = session.output().to_vec();
            o.events = session.events().to_string();
            if stop {
                keep = false;
                vec![o, output(slot.id, OutputKind::Stopped, None)]
            } else {
                vec![o]
            }
        }
    }));
    let done = Instant::now();
    let mut st = slot.lock();
    match result {
        Ok(outs) => {
            if let Some((received, wait)) = timing {
                let s = &mut st.stats;
                s.queue_wait.record_ns(wait.as_nanos() as u64);
                s.process.record_ns(done.duration_since(started).as_nanos() as u64);
                s.engine.record_ns(done.duration_since(received).as_nanos() as u64);
                for (stat, (_, _, ns)) in s.nodes.iter_mut().zip(session.graph().node_timings()) {
                    stat.process.record_ns(ns);
                }
            }
            for o in &outs {
                match o.kind {
                    OutputKind::Audio => st.stats.frames_out += 1,
                    OutputKind::FrameError => st.stats.frame_errors += 1,
                    _ => {}
                }
                st.stats.events += o.events.lines().count() as u64;
            }
            outbox.extend(outs);
            if let Some(b) = returned {
                st.free.push(b);
            }
            if keep && !st.discarded {
                st.session = Some(session);
            } else {
                sessions.fetch_sub(1, Ordering::Relaxed);
                st.items.clear();
                st.queued_samples = 0;
            }
        }
        Err(payload) => {
            let mut o = output(slot.id, OutputKind::Failed, None);
            o.error = Some(("RM_ERR_SESSION_FAILED", panic_message(payload.as_ref())));
            outbox.push(o);
            st.closed = true;
            st.items.clear();
            st.queued_samples = 0;
            sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }
    if st.session.is_some() && !st.items.is_empty() {
        let _ = own_tx.send(Msg::Run(slot.clone()));
    } else {
        st.scheduled = false;
    }
}
