//! The worker pool (docs/engine.md): `workers` threads, optionally pinned to cores, each owning the
//! sessions assigned to it.
//!
//! ```text
//!  push(frame) ─▶ slot.items ─▶ worker k's run queue gets the slot once ("scheduled"), unpark k
//!
//!  worker k, per wake-up: take the whole run queue; for each slot, up to TURN items:
//!     a frame that waited longer than the queue limit ─▶ dropped (one Dropped record per run)
//!     anything else ─▶ processed (catch_unwind) ─▶ a record in the batch being filled
//!  a slot with more items goes to the back of the run queue, so sessions take turns.
//!
//!  batch = one byte buffer (audio and texts back to back) + an index of RECORD_WORDS u32 per record
//!        ─▶ Sink::deliver as soon as the host holds no batch of this worker (else keep filling)
//!        ◀─ the host drops the batch when it has read it: its buffers go back to the worker, and
//!           the message buffers of the frames it answered to the worker's stock, for the next pushes
//!  idle: spin for `spin`, then park until a push (or a returned batch) unparks it
//! ```
//! At most one batch per worker is ever with the host, so the host's callback queue holds at most
//! `workers` entries; a batch that reaches MAX_BATCH_RECORDS / MAX_BATCH_BYTES while the host is busy
//! makes the worker wait for the host (frames then wait in their queues and are dropped by age); the
//! tally counts each such wait.
//! Steady state allocates nothing: message buffers, the run queue and both batch buffers are reused.
//!
//! A session lives on one worker for its whole life, so its messages are processed in order with
//! its state hot in that core's cache. A panic inside a session ends that session only.

use std::collections::VecDeque;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::graph::Workspace;
use crate::replay::AnswerRing;
use crate::session::Session;
use crate::stats::{NodeStats, SessionStats};
use crate::tally::{series_of, EngineTally, Tally};

/// Items one session may run per turn before the worker moves on to the next session.
const TURN: usize = 16;
/// A batch this full is handed over (or, while the host holds the previous one, waits for it).
const MAX_BATCH_RECORDS: usize = 256;
/// The same bound in bytes of audio and text: small enough that the host's copy of a batch comes
/// from its allocator's heap (glibc maps anything over 128 KiB afresh, page faults and all).
const MAX_BATCH_BYTES: usize = 64 << 10;

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

/// u32 words per record in [`Batch::index`].
pub const RECORD_WORDS: usize = 8;

/// Word positions inside one record of [`Batch::index`].
pub mod word {
    /// Session id (low 32 bits).
    pub const SESSION: usize = 0;
    /// [`super::OutputKind`] as a number.
    pub const KIND: usize = 1;
    /// Message number, low and high halves; both `u32::MAX` when the record answers no message.
    pub const FRAME_LO: usize = 2;
    /// See [`FRAME_LO`].
    pub const FRAME_HI: usize = 3;
    /// Control tag (`ParamsApplied`), the number of frames of a `Dropped` run, or where an `Audio` or
    /// `Flushed` answer starts among the session's kept answers (low 32 bits; 0 when it keeps none,
    /// see [`super::Pool::keep_answers`]).
    pub const TAG: usize = 4;
    /// Byte offset of the record's payload in [`super::Batch::data`].
    pub const OFFSET: usize = 5;
    /// Audio bytes at the start of the payload.
    pub const AUDIO_LEN: usize = 6;
    /// UTF-8 text bytes after the audio: event lines, or an error as `CODE\nmessage`.
    pub const TEXT_LEN: usize = 7;
}

/// Kinds of output records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum OutputKind {
    /// The answer to one binary message (audio, then event lines).
    Audio = 0,
    /// A malformed message: no answer audio, the session goes on (docs/protocol.md §6). Text: the error.
    FrameError = 1,
    /// The tail after `flush` (audio may be empty), then event lines.
    Flushed = 2,
    /// A live parameter change was applied (no text) or rejected (text: the error).
    ParamsApplied = 3,
    /// The session stopped after its final flush (`stop`), and is gone from the worker.
    Stopped = 4,
    /// The session died (a node panicked); it is gone from the worker. Text: the error.
    Failed = 5,
    /// Frames that waited longer than the queue limit before the worker reached them (docs/protocol.md, queue bound):
    /// `frame` is the first, `tag` the count of consecutive frame numbers.
    Dropped = 6,
}

impl OutputKind {
    /// The kind with number `n`.
    pub fn from_u32(n: u32) -> Option<OutputKind> {
        use OutputKind::*;
        [Audio, FrameError, Flushed, ParamsApplied, Stopped, Failed, Dropped].get(n as usize).copied()
    }
}

/// One record of a [`Batch`], borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// The session.
    pub session: u64,
    /// What happened.
    pub kind: OutputKind,
    /// The message number this answers (first dropped one for `Dropped`).
    pub frame: Option<u64>,
    /// Control tag, or the count of a `Dropped` run.
    pub tag: u32,
    /// Encoded audio.
    pub audio: &'a [u8],
    /// Event lines, or the error as `CODE\nmessage`.
    pub text: &'a str,
}

impl Record<'_> {
    /// The error code and message of an error record.
    pub fn error(&self) -> Option<(&str, &str)> {
        match self.kind {
            OutputKind::FrameError | OutputKind::Failed | OutputKind::ParamsApplied if !self.text.is_empty() => {
                Some(self.text.split_once('\n').unwrap_or((self.text, "")))
            }
            _ => None,
        }
    }
}

/// The buffers of a batch, kept by the worker between batches.
#[derive(Default)]
struct Buffers {
    data: Vec<u8>,
    index: Vec<u32>,
    /// The message buffers of the frames this batch answers (and drops): they go back to the
    /// worker's [`MessageStock`] when the host is done with the batch.
    spent: Vec<Vec<u8>>,
}

impl Buffers {
    fn records(&self) -> usize {
        self.index.len() / RECORD_WORDS
    }

    fn full(&self) -> bool {
        self.records() >= MAX_BATCH_RECORDS || self.data.len() >= MAX_BATCH_BYTES
    }

    fn clear(&mut self) {
        self.data.clear();
        self.index.clear();
    }

    /// Appends one record; the payload is `audio` then `text`.
    fn push(&mut self, session: u64, kind: OutputKind, frame: Option<u64>, tag: u32, audio: &[u8], text: &[u8]) {
        let offset = self.data.len();
        self.data.extend_from_slice(audio);
        self.data.extend_from_slice(text);
        self.push_index(session, kind, frame, tag, offset, audio.len());
    }

    /// Appends a record whose audio is already in place, from `offset` to the end of the data, and
    /// whose text is `text`.
    fn push_after_audio(&mut self, session: u64, kind: OutputKind, frame: Option<u64>, tag: u32, offset: usize, text: &[u8]) {
        let audio_len = self.data.len() - offset;
        self.data.extend_from_slice(text);
        self.push_index(session, kind, frame, tag, offset, audio_len);
    }

    /// Appends a record whose text is an error written in place (no intermediate String).
    fn push_error(&mut self, session: u64, kind: OutputKind, frame: Option<u64>, tag: u32, code: &str, message: &dyn std::fmt::Display) {
        let offset = self.data.len();
        let _ = write!(self.data, "{code}\n{message}");
        self.push_index(session, kind, frame, tag, offset, 0);
    }

    fn push_index(&mut self, session: u64, kind: OutputKind, frame: Option<u64>, tag: u32, offset: usize, audio_len: usize) {
        let frame = frame.unwrap_or(u64::MAX);
        let text_len = self.data.len() - offset - audio_len;
        self.index.extend_from_slice(&[
            session as u32,
            kind as u32,
            frame as u32,
            (frame >> 32) as u32,
            tag,
            offset as u32,
            audio_len as u32,
            text_len as u32,
        ]);
    }
}

/// Finished outputs of one worker: every record's payload back to back in [`Batch::data`], and
/// [`RECORD_WORDS`] words per record in [`Batch::index`] (see [`word`]). Dropping the batch hands
/// its buffers back to the worker, which may then deliver its next one.
pub struct Batch {
    buffers: Buffers,
    home: Option<Arc<Shared>>,
}

impl Batch {
    /// Payloads of every record.
    pub fn data(&self) -> &[u8] {
        &self.buffers.data
    }

    /// The index, [`RECORD_WORDS`] words per record.
    pub fn index(&self) -> &[u32] {
        &self.buffers.index
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.buffers.records()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> Record<'_> {
        let w = &self.buffers.index[i * RECORD_WORDS..(i + 1) * RECORD_WORDS];
        let frame = u64::from(w[word::FRAME_LO]) | (u64::from(w[word::FRAME_HI]) << 32);
        let at = w[word::OFFSET] as usize;
        let audio_end = at + w[word::AUDIO_LEN] as usize;
        let text = &self.buffers.data[audio_end..audio_end + w[word::TEXT_LEN] as usize];
        Record {
            session: u64::from(w[word::SESSION]),
            kind: OutputKind::from_u32(w[word::KIND]).expect("kinds are written by the worker"),
            frame: (frame != u64::MAX).then_some(frame),
            tag: w[word::TAG],
            audio: &self.buffers.data[at..audio_end],
            // Texts are written from &str / Display only.
            text: std::str::from_utf8(text).unwrap_or(""),
        }
    }

    /// Every record, in order.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        (0..self.len()).map(|i| self.record(i))
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            lock(&home.messages).restock(&mut self.buffers.spent);
            *lock(&home.returned) = Some(std::mem::take(&mut self.buffers));
            home.returned_flag.store(true, Ordering::Release);
            home.unpark();
        }
    }
}

/// Receives finished batches on a worker thread. Implementations must not block for long; they
/// drop the batch (on any thread) once they have read it.
pub trait Sink: Send + Sync + 'static {
    /// Takes one batch of records, in order per session.
    fn deliver(&self, batch: Batch);
}

enum Item {
    Frame { frame: u64, bytes: Vec<u8>, received: Instant },
    Params { node: String, params: Vec<(String, Value)>, tag: u32 },
    Flush,
    Stop,
}

struct SlotState {
    items: VecDeque<Item>,
    scheduled: bool,
    /// No more pushes or controls are accepted (stopping, stopped, failed or closed).
    closed: bool,
    /// Closed by the host while a worker held the session: the worker drops it.
    discarded: bool,
    session: Option<Box<Session>>,
    stats: SessionStats,
    /// The latest answers, kept for a resume ([`Pool::keep_answers`]); their records carry where each starts.
    answers: Option<KeptAnswers>,
}

/// One session's place in the pool: its queue, state and stats.
pub struct Slot {
    id: u64,
    worker: usize,
    /// Longest a frame may wait before the worker starts it (docs/configuration.md `SESSION_QUEUE_MS`);
    /// `None` never drops (batch jobs).
    queue_limit: Option<Duration>,
    /// Bytes per sample frame of the input encoding; 0 when messages vary (Opus): their sample
    /// frames are counted once decoded.
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
    /// Queued messages dropped because they had already waited longer than the queue limit
    /// (their numbers, oldest first).
    pub dropped: Vec<u64>,
}

/// Answers up to this size fit in the ring a session starts with (20 ms of 48 kHz stereo `f32le` is
/// 7,680 bytes); the first larger one grows it.
const ASSUMED_ANSWER_BYTES: usize = 8 << 10;

/// The bytes a session's ring must hold: the `keep` bytes the host may ask back, and the answers still
/// on their way to it. A worker may hold two batches the host has not taken (one queued, one filling);
/// each holds less than `MAX_BATCH_BYTES` before its last answer, which is at most `largest` bytes.
fn ring_bytes(keep: usize, largest: usize) -> usize {
    keep.saturating_add(MAX_BATCH_BYTES.saturating_add(largest).saturating_mul(2))
}

/// A session's kept answers and what its ring has room for.
struct KeptAnswers {
    ring: AnswerRing,
    keep: usize,
    /// The largest answer the ring's room for answers in flight counts with.
    largest: usize,
}

/// Keeps an answer in the session's ring, if it keeps any; its position's low 32 bits for the record.
/// An answer larger than any before it first grows the ring, so that the host can still read back
/// every answer its log holds. Tried once per larger size: when the memory cannot be had, the ring
/// stays as it is and a resume that reaches too far back is refused as it would be anyway.
fn keep_answer(answers: &mut Option<KeptAnswers>, audio: &[u8]) -> u32 {
    let Some(kept) = answers.as_mut() else { return 0 };
    if audio.len() > kept.largest {
        kept.largest = audio.len();
        kept.ring.grow_to(ring_bytes(kept.keep, kept.largest));
    }
    kept.ring.append(audio) as u32
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic while holding it; the state is plain data and stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        lock(&self.state)
    }

    /// Reads the session's counters and histograms in place, under the lock its worker records under
    /// (keep `read` short). Nothing is copied: a five-node session's histograms take ~135 KB.
    pub fn with_stats<R>(&self, read: impl FnOnce(&SessionStats) -> R) -> R {
        read(&self.lock().stats)
    }

    /// Records the host-side latency of one message (received → answer sent).
    pub fn record_end_to_end(&self, ns: impl IntoIterator<Item = u64>) {
        let mut st = self.lock();
        for ns in ns {
            st.stats.end_to_end.record_ns(ns);
        }
    }

    /// Whether the session has ended (stopped, failed or closed).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn stale(&self, received: Instant, now: Instant) -> bool {
        self.queue_limit.is_some_and(|limit| now.saturating_duration_since(received) > limit)
    }
}

/// Buffers a message can be copied into, shared by every session of a worker and handed out last
/// in, first out: the one a frame is copied into is one the worker finished with moments ago,
/// still in a cache, where each session keeping its own would make every copy write to memory
/// untouched since that session's previous frame (1,000 paced sessions: a frame's copy was most of
/// the host's cost of a push). Messages over [`MessageStock::LARGE_BYTES`] draw from buffers of their
/// own class, so a long message reuses a long buffer and a frame never holds one. Each class keeps
/// at most [`MessageStock::MAX_BYTES`]; beyond it, buffers are freed.
#[derive(Default)]
struct MessageStock {
    small: Class,
    large: Class,
}

/// Buffers of one class, last in first out, and their capacity summed.
#[derive(Default)]
struct Class {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

impl MessageStock {
    /// Most capacity one class keeps: a thousand 20 ms frames of 48 kHz stereo, or a few long messages.
    const MAX_BYTES: usize = 4 << 20;
    /// Messages (and buffers) longer than this are of the large class.
    const LARGE_BYTES: usize = 64 << 10;

    fn class(&mut self, bytes: usize) -> &mut Class {
        if bytes > Self::LARGE_BYTES {
            &mut self.large
        } else {
            &mut self.small
        }
    }

    /// An empty buffer for a message of `len` bytes: the last one put back of its class, or a new one.
    fn take(&mut self, len: usize) -> Vec<u8> {
        let class = self.class(len);
        match class.buffers.pop() {
            Some(b) => {
                class.bytes -= b.capacity();
                b
            }
            None => Vec::new(),
        }
    }

    fn put(&mut self, mut buffer: Vec<u8>) {
        let cap = buffer.capacity();
        let class = self.class(cap);
        if cap == 0 || class.bytes + cap > Self::MAX_BYTES {
            return;
        }
        buffer.clear();
        class.bytes += cap;
        class.buffers.push(buffer);
    }

    /// Takes back every buffer of `spent`, in order (the last one is lent first).
    fn restock(&mut self, spent: &mut Vec<Vec<u8>>) {
        for b in spent.drain(..) {
            self.put(b);
        }
    }
}

/// What one worker shares with the pool and with its batches.
struct Shared {
    /// Slots with work, in turn order.
    run: Mutex<VecDeque<Arc<Slot>>>,
    /// Set when `run` gets a slot; lets the idle worker spin without taking the lock.
    queued: AtomicBool,
    /// The buffers of the batch the host has finished with.
    returned: Mutex<Option<Buffers>>,
    /// Message buffers for the frames pushed to this worker's sessions. Only the host side takes
    /// this lock (pushes, and batches it is done with), so it never waits for the worker.
    messages: Mutex<MessageStock>,
    returned_flag: AtomicBool,
    /// Work was queued without waking the worker (`Pool::push_deferred`).
    wake_pending: AtomicBool,
    shutdown: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Shared {
    fn unpark(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
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
    shared: Arc<Shared>,
    join: Mutex<Option<JoinHandle<()>>>,
    core: Option<usize>,
    pinned: Arc<AtomicBool>,
    sessions: Arc<AtomicUsize>,
    heart: Heartbeat,
    tally: Arc<Tally>,
}

/// How the workers wait for work.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    /// Worker threads.
    pub workers: usize,
    /// Pin each worker to a core of its own (round robin when there are more workers than cores).
    /// With fewer workers than cores, the workers take the last cores and the first ones are left
    /// for the host's threads ([`Pool::confine_caller`]).
    pub pin_cores: bool,
    /// How long an idle worker polls for new work before it parks (a park and its wake-up cost
    /// a few microseconds each; polling costs the core meanwhile).
    pub spin: Duration,
}

/// The pool of worker threads.
pub struct Pool {
    workers: Vec<WorkerHandle>,
    next_id: AtomicU64,
    /// With pinning and fewer workers than cores: the cores no worker runs on.
    free_cores: Vec<usize>,
}

impl Pool {
    /// Starts `workers` threads, pinned to cores with `pin_cores` (see [`PoolOptions::pin_cores`]).
    /// A failure to pin is reported in [`Pool::workers`], not fatal. Idle workers park at once.
    pub fn new(workers: usize, pin_cores: bool, sink: Arc<dyn Sink>) -> Pool {
        Pool::with_options(PoolOptions { workers, pin_cores, spin: Duration::ZERO }, sink)
    }

    /// Starts the pool with every option.
    pub fn with_options(options: PoolOptions, sink: Arc<dyn Sink>) -> Pool {
        quiet_worker_panics();
        crate::memory::pin_mmap_threshold();
        let cores = if options.pin_cores { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
        let workers = options.workers.max(1);
        // Fewer workers than cores: the workers take the last cores, the host keeps the first ones.
        let (free, worker_cores) = cores.split_at(cores.len().saturating_sub(workers));
        let free_cores = free.iter().map(|c| c.id).collect();
        let epoch = Instant::now();
        let handles = (0..workers)
            .map(|k| {
                let shared = Arc::new(Shared {
                    run: Mutex::new(VecDeque::with_capacity(256)),
                    queued: AtomicBool::new(false),
                    returned: Mutex::new(None),
                    messages: Mutex::new(MessageStock::default()),
                    returned_flag: AtomicBool::new(false),
                    wake_pending: AtomicBool::new(false),
                    shutdown: AtomicBool::new(false),
                    thread: OnceLock::new(),
                });
                let core = worker_cores.get(k % worker_cores.len().max(1)).copied();
                let pinned = Arc::new(AtomicBool::new(false));
                let sessions = Arc::new(AtomicUsize::new(0));
                let heart = Heartbeat { epoch, last_ms: Arc::new(AtomicU64::new(0)) };
                let worker_heart = heart.clone();
                let tally = Arc::new(Tally::default());
                let worker_tally = tally.clone();
                let (me, sink, pinned_flag, sessions_count) = (shared.clone(), sink.clone(), pinned.clone(), sessions.clone());
                let spin = options.spin;
                let (ready_tx, ready_rx) = std::sync::mpsc::channel();
                let join = std::thread::Builder::new()
                    .name(format!("rm-worker-{k}"))
                    .spawn(move || {
                        // Only ids that get_core_ids returned are passed: core_affinity aborts on others.
                        let ok = core.is_some_and(core_affinity::set_for_current);
                        pinned_flag.store(ok, Ordering::Relaxed);
                        // nnnoiseless caches FFT plans per thread; build them now, not on a live frame.
                        crate::nodes::denoise::prepare_thread();
                        let _ = ready_tx.send(());
                        Worker { me, sink, sessions: sessions_count, spin, heart: worker_heart, tally: worker_tally }.run();
                    })
                    .expect("spawn worker thread");
                let _ = shared.thread.set(join.thread().clone());
                let _ = ready_rx.recv();
                WorkerHandle { shared, join: Mutex::new(Some(join)), core: core.map(|c| c.id), pinned, sessions, heart, tally }
            })
            .collect();
        Pool { workers: handles, next_id: AtomicU64::new(1), free_cores }
    }

    /// Confines the calling thread (the host's event loop) to the cores no worker is pinned to, so that
    /// neither preempts the other: a worker woken on the event loop's core takes the core from it at
    /// every wake, and the scheduler tends to move a thread onto the core of the thread that woke it.
    /// Threads the caller starts afterwards inherit the set. Returns the cores, or an empty list when
    /// there are none to give (no pinning, or at least as many workers as cores) or the call failed.
    pub fn confine_caller(&self) -> Vec<usize> {
        if self.free_cores.is_empty() || !set_thread_affinity(&self.free_cores) {
            return Vec::new();
        }
        self.free_cores.clone()
    }

    /// Queue wait and per-node-type processing time of every frame since the pool started, at
    /// [`TALLY_BOUNDS_NS`](crate::tally::TALLY_BOUNDS_NS): the same cost for 1 session or 10,000.
    pub fn tally(&self) -> EngineTally {
        EngineTally::sum(self.workers.iter().map(|w| w.tally.as_ref()))
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

    /// Places a built session on the least-loaded worker. A frame that would wait longer than
    /// `queue_limit` before the worker starts it is dropped (`None` for batch jobs, which must lose
    /// nothing). `frame_bytes` is the input's bytes per sample frame, 0 for Opus (see [`Slot`]).
    pub fn add_session(&self, session: Session, queue_limit: Option<Duration>, frame_bytes: usize) -> Arc<Slot> {
        // Least loaded, preferring workers that beat lately over one stuck in an item.
        let stuck = |k: usize| self.workers[k].heart.since_ms() > 10 * BEAT_INTERVAL.as_millis() as u64;
        let worker = (0..self.workers.len())
            .min_by_key(|&k| (stuck(k), self.workers[k].sessions.load(Ordering::Relaxed)))
            .unwrap_or(0);
        self.workers[worker].sessions.fetch_add(1, Ordering::Relaxed);
        let nodes = session
            .graph()
            .node_timings()
            .map(|(id, node_type, _)| NodeStats {
                id: id.to_string(),
                node_type,
                series: series_of(node_type),
                process: Default::default(),
            })
            .collect();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Slot {
            id,
            worker,
            queue_limit,
            frame_bytes,
            next_frame: AtomicU64::new(0),
            state: Mutex::new(SlotState {
                items: VecDeque::new(),
                scheduled: false,
                closed: false,
                discarded: false,
                session: Some(Box::new(session)),
                stats: SessionStats { nodes, ..Default::default() },
                answers: None,
            }),
        })
    }

    /// Queues one binary message (copied once, into a pooled buffer). Queued messages that have
    /// already waited longer than the queue limit are dropped and named in the result (docs/protocol.md, queue bound);
    /// the worker drops the ones it reaches too late itself (a `Dropped` record). The message itself
    /// is always queued. A message with a partial sample frame is queued too and answered with an
    /// error in order.
    pub fn push(&self, slot: &Arc<Slot>, bytes: &[u8]) -> Result<Pushed, PushError> {
        self.push_message(slot, bytes, true)
    }

    /// [`Pool::push`] without waking the worker: it starts on the message when it next looks for
    /// work, or at the next [`Pool::wake`]. A host that receives many messages per turn of its event
    /// loop wakes each worker once per turn instead of once per message (a futex call and a context
    /// switch each).
    pub fn push_deferred(&self, slot: &Arc<Slot>, bytes: &[u8]) -> Result<Pushed, PushError> {
        self.push_message(slot, bytes, false)
    }

    /// Wakes every worker that was given work by [`Pool::push_deferred`] since the last wake.
    pub fn wake(&self) {
        for w in &self.workers {
            if w.shared.wake_pending.swap(false, Ordering::AcqRel) {
                w.shared.unpark();
            }
        }
    }

    fn push_message(&self, slot: &Arc<Slot>, bytes: &[u8], wake: bool) -> Result<Pushed, PushError> {
        let samples = bytes.len().checked_div(slot.frame_bytes).unwrap_or(0) as u64;
        let received = Instant::now();
        let mut st = slot.lock();
        if st.closed {
            return Err(PushError::Closed);
        }
        let mut dropped = Vec::new();
        if slot.queue_limit.is_some() {
            // Receive times grow along the queue: the stale frames are the oldest ones. Control
            // items stay, in their place.
            let mut at = 0;
            while at < st.items.len() {
                match &st.items[at] {
                    Item::Frame { received: r, .. } if slot.stale(*r, received) => {
                        if let Some(Item::Frame { frame, bytes, .. }) = st.items.remove(at) {
                            st.stats.frames_dropped += 1;
                            lock(&self.workers[slot.worker].shared.messages).put(bytes);
                            dropped.push(frame);
                        }
                    }
                    Item::Frame { .. } => break,
                    _ => at += 1,
                }
            }
        }
        let frame = slot.next_frame.fetch_add(1, Ordering::Relaxed);
        let mut buf = lock(&self.workers[slot.worker].shared.messages).take(bytes.len());
        buf.extend_from_slice(bytes);
        st.items.push_back(Item::Frame { frame, bytes: buf, received });
        st.stats.frames_in += 1;
        st.stats.samples_in += samples;
        if wake {
            self.schedule(slot, &mut st);
        } else if !st.scheduled {
            st.scheduled = true;
            let shared = &self.workers[slot.worker].shared;
            lock(&shared.run).push_back(slot.clone());
            shared.queued.store(true, Ordering::Release);
            shared.wake_pending.store(true, Ordering::Release);
        }
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

    /// Flushes, then ends the session (a `Stopped` record follows the `Flushed` one).
    pub fn stop(&self, slot: &Arc<Slot>) -> Result<(), PushError> {
        self.control(slot, Item::Stop)
    }

    /// From now on, keeps the session's latest answers (`Audio` and `Flushed` audio) for a resume
    /// (docs/protocol.md §8): at least the last `bytes` of them, and room for those still on their way to
    /// the host. Each such record's [`word::TAG`] then says where its answer starts, for
    /// [`Pool::read_answer`]. Call it before the first push. False when the memory cannot be had.
    pub fn keep_answers(&self, slot: &Arc<Slot>, bytes: usize) -> bool {
        let kept = AnswerRing::new(ring_bytes(bytes, ASSUMED_ANSWER_BYTES)).map(|ring| KeptAnswers {
            ring,
            keep: bytes,
            largest: ASSUMED_ANSWER_BYTES,
        });
        let keeps = kept.is_some();
        slot.lock().answers = kept;
        keeps
    }

    /// Copies the kept answer of `len` bytes that started at `at` (a record's [`word::TAG`]) into
    /// `out`; false when the ring has written over it, or the session keeps no answers.
    pub fn read_answer(&self, slot: &Arc<Slot>, at: u32, len: usize, out: &mut Vec<u8>) -> bool {
        slot.lock().answers.as_ref().is_some_and(|kept| kept.ring.read(at, len, out))
    }

    /// Ends the session at once, discarding whatever is queued (client gone).
    pub fn close(&self, slot: &Arc<Slot>) {
        let mut st = slot.lock();
        st.items.clear();
        // Its ring goes back to the stock for the sessions that start next.
        st.answers = None;
        // The host keeps the slot until its garbage collector finalizes the session object, which can
        // be long after: the histograms go back to the stock now, for the sessions that start next.
        st.stats.release_histograms();
        st.closed = true;
        st.discarded = true;
        if st.session.take().is_some() {
            self.workers[slot.worker].sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn schedule(&self, slot: &Arc<Slot>, st: &mut SlotState) {
        if !st.scheduled {
            st.scheduled = true;
            enqueue(&self.workers[slot.worker].shared, slot.clone());
        }
    }

    /// Sessions still registered with workers.
    pub fn session_count(&self) -> usize {
        self.workers.iter().map(|w| w.sessions.load(Ordering::Relaxed)).sum()
    }

    /// Stops every worker after the work already queued to it, and waits for them. Sessions that
    /// are still open get no further answers. Safe to call more than once.
    pub fn shutdown(&self) {
        for w in &self.workers {
            w.shared.shutdown.store(true, Ordering::Release);
            w.shared.unpark();
        }
        for w in &self.workers {
            let handle = lock(&w.join).take();
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

/// Sets the calling thread's CPU affinity to `cores` (Linux; elsewhere nothing is set).
fn set_thread_affinity(cores: &[usize]) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET only writes inside it (ids past
        // CPU_SETSIZE are skipped), and sched_setaffinity(0, …) changes only the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in cores.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cores;
        false
    }
}

/// A panic on a worker is one session's failure, reported to its client (`Failed`); printing it with
/// a symbolised backtrace (RUST_BACKTRACE) would hold the worker, and every session on it, for
/// hundreds of milliseconds. Worker panics print one line; every other thread keeps the previous hook.
fn quiet_worker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            match std::thread::current().name() {
                Some(name) if name.starts_with("rm-worker-") => eprintln!("{name}: a session failed: {info}"),
                _ => previous(info),
            }
        }));
    });
}

fn enqueue(shared: &Shared, slot: Arc<Slot>) {
    lock(&shared.run).push_back(slot);
    shared.queued.store(true, Ordering::Release);
    // Cheap when the worker is awake: unpark only makes a system call for a parked thread.
    shared.unpark();
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("node panicked")
}

/// What processing one item produced, written into the batch after the (unwind-guarded) DSP.
enum Done {
    Audio(u64),
    FrameError(u64, crate::codec::CodecError),
    Params(u32, Option<crate::graph::GraphError>),
    Flushed { stop: bool },
}

struct Worker {
    me: Arc<Shared>,
    sink: Arc<dyn Sink>,
    sessions: Arc<AtomicUsize>,
    spin: Duration,
    heart: Heartbeat,
    tally: Arc<Tally>,
}

impl Worker {
    fn run(self) {
        let mut filling = Buffers::default();
        // The buffers of the batch that is not with the host (None while one is).
        let mut spare: Option<Buffers> = Some(Buffers::default());
        let mut ready: VecDeque<Arc<Slot>> = VecDeque::with_capacity(256);
        // Every session of this worker processes its blocks in these buffers (graph.rs `Workspace`).
        let mut workspace = Workspace::default();
        loop {
            self.heart.beat();
            if spare.is_none() && self.me.returned_flag.swap(false, Ordering::Acquire) {
                spare = lock(&self.me.returned).take();
            }
            if !filling.index.is_empty() {
                if let Some(mut next) = spare.take() {
                    next.clear();
                    let batch = std::mem::replace(&mut filling, next);
                    self.sink.deliver(Batch { buffers: batch, home: Some(self.me.clone()) });
                }
            }
            if self.me.shutdown.load(Ordering::Acquire) {
                // Stopping: sessions get no further answers, and work still queued is left undone.
                // The host may be waiting for this thread to end and return nothing meanwhile (its
                // only thread is in `Pool::shutdown`): hand over what is filled without waiting for
                // the batch it holds. Processing on instead would spin for ever once this batch is
                // full, with nowhere to put the next record.
                if !filling.index.is_empty() {
                    self.sink.deliver(Batch { buffers: filling, home: None });
                }
                return;
            }
            if !filling.full() {
                self.me.queued.store(false, Ordering::Release);
                std::mem::swap(&mut *lock(&self.me.run), &mut ready);
                if !ready.is_empty() {
                    while let Some(slot) = ready.pop_front() {
                        self.heart.beat();
                        self.run_slot(&slot, &mut filling, &mut workspace);
                        if filling.full() {
                            // The rest keep their turn, ahead of the slots requeued meanwhile.
                            let mut run = lock(&self.me.run);
                            while let Some(s) = ready.pop_back() {
                                run.push_front(s);
                            }
                            break;
                        }
                    }
                    continue;
                }
            }
            // A full batch here means the host still holds the one before it: the wait is counted
            // (`remotemedia_engine_handback_wait_seconds`), since frames wait in their queues meanwhile.
            let full_since = filling.full().then(Instant::now);
            self.idle(full_since.is_some(), filling.index.is_empty() || spare.is_some());
            if let Some(since) = full_since {
                self.tally.handback_wait(since.elapsed().as_nanos() as u64);
            }
        }
    }

    /// Waits until there is something to do: a slot to run (unless the batch is full), or the
    /// host's batch back (when a filled one waits for it). Spins first, then parks, beating every
    /// BEAT_INTERVAL.
    fn idle(&self, full: bool, nothing_to_deliver: bool) {
        let wanted = || {
            (!full && self.me.queued.load(Ordering::Acquire))
                || (!nothing_to_deliver && self.me.returned_flag.load(Ordering::Acquire))
                || self.me.shutdown.load(Ordering::Acquire)
        };
        if !self.spin.is_zero() {
            let until = Instant::now() + self.spin;
            while Instant::now() < until {
                for _ in 0..64 {
                    if wanted() {
                        return;
                    }
                    std::hint::spin_loop();
                }
            }
        }
        while !wanted() {
            self.heart.beat();
            std::thread::park_timeout(BEAT_INTERVAL);
        }
    }

    /// Runs up to TURN items of `slot` (fewer once the batch is full), writing their records;
    /// requeues the slot if more wait.
    fn run_slot(&self, slot: &Arc<Slot>, out: &mut Buffers, workspace: &mut Workspace) {
        for _ in 0..TURN {
            if out.full() {
                break;
            }
            self.heart.beat();
            let (item, session, started) = {
                let mut st = slot.lock();
                let started = Instant::now();
                // docs/protocol.md, queue bound: a frame that waited longer than the limit before its start is dropped.
                let mut run: Option<(u64, u32)> = None;
                while let Some(Item::Frame { received, .. }) = st.items.front() {
                    if st.session.is_none() || !slot.stale(*received, started) {
                        break;
                    }
                    if let Some(Item::Frame { frame, bytes, .. }) = st.items.pop_front() {
                        out.spent.push(bytes);
                        st.stats.frames_dropped += 1;
                        run = Some(run.map_or((frame, 1), |(first, n)| (first, n + 1)));
                    }
                }
                if let Some((first, n)) = run {
                    out.push(slot.id, OutputKind::Dropped, Some(first), n, &[], &[]);
                }
                match (st.items.pop_front(), st.session.take()) {
                    (Some(item), Some(session)) => (item, session, started),
                    (_, session) => {
                        // Nothing to do, or the session was closed meanwhile.
                        st.session = session;
                        st.scheduled = false;
                        return;
                    }
                }
            };
            if !self.run_item(slot, item, session, started, out, workspace) {
                return;
            }
        }
        let mut st = slot.lock();
        if st.session.is_some() && !st.items.is_empty() {
            drop(st);
            enqueue(&self.me, slot.clone());
        } else {
            st.scheduled = false;
        }
    }

    /// Processes one item; false when the slot is done (no more items, or the session ended).
    fn run_item(&self, slot: &Arc<Slot>, item: Item, mut session: Box<Session>, started: Instant, out: &mut Buffers, workspace: &mut Workspace) -> bool {
        let mut returned: Option<Vec<u8>> = None;
        let mut received_at: Option<Instant> = None;
        // A frame's answer is encoded straight into the batch, from here.
        let audio_at = out.data.len();
        let result = catch_unwind(AssertUnwindSafe(|| match item {
            Item::Frame { frame, bytes, received } => {
                let done = match session.process_into(frame, &bytes, &mut out.data, workspace) {
                    Ok(()) => Done::Audio(frame),
                    Err(e) => Done::FrameError(frame, e),
                };
                returned = Some(bytes);
                received_at = Some(received);
                done
            }
            Item::Params { node, params, tag } => {
                let error = params.iter().find_map(|(name, value)| session.graph_mut().set_param(&node, name, value).err());
                Done::Params(tag, error)
            }
            Item::Flush | Item::Stop => {
                session.flush(slot.next_frame.load(Ordering::Relaxed));
                Done::Flushed { stop: matches!(item, Item::Stop) }
            }
        }));
        let done_at = Instant::now();
        let id = slot.id;
        if let Some(b) = returned {
            out.spent.push(b);
        }
        let mut st = slot.lock();
        let mut keep = true;
        match result {
            Ok(done) => {
                match done {
                    Done::Audio(frame) => {
                        let at = keep_answer(&mut st.answers, &out.data[audio_at..]);
                        out.push_after_audio(id, OutputKind::Audio, Some(frame), at, audio_at, session.events().as_bytes());
                        st.stats.frames_out += 1;
                        st.stats.events += u64::from(session.event_count());
                        if slot.frame_bytes == 0 {
                            st.stats.samples_in += session.input_frames() as u64;
                        }
                    }
                    Done::FrameError(frame, e) => {
                        out.push_error(id, OutputKind::FrameError, Some(frame), 0, "RM_ERR_BAD_FRAME", &e);
                        st.stats.frame_errors += 1;
                    }
                    Done::Params(tag, None) => out.push(id, OutputKind::ParamsApplied, None, tag, &[], &[]),
                    Done::Params(tag, Some(e)) => {
                        out.push_error(id, OutputKind::ParamsApplied, None, tag, "RM_ERR_BAD_PARAMS", &e);
                    }
                    Done::Flushed { stop } => {
                        let at = keep_answer(&mut st.answers, session.output());
                        out.push(id, OutputKind::Flushed, None, at, session.output(), session.events().as_bytes());
                        st.stats.events += u64::from(session.event_count());
                        if stop {
                            out.push(id, OutputKind::Stopped, None, 0, &[], &[]);
                            keep = false;
                        }
                    }
                }
                st.stats.non_finite_samples = session.non_finite_samples();
                if let Some(received) = received_at {
                    let s = &mut st.stats;
                    let waited = started.saturating_duration_since(received).as_nanos() as u64;
                    s.queue_wait.record_ns(waited);
                    self.tally.queue_wait(waited);
                    s.process.record_ns(done_at.saturating_duration_since(started).as_nanos() as u64);
                    s.engine.record_ns(done_at.saturating_duration_since(received).as_nanos() as u64);
                    for (stat, (_, _, ns)) in s.nodes.iter_mut().zip(session.graph().node_timings()) {
                        stat.process.record_ns(ns);
                        if let Some(k) = stat.series {
                            self.tally.node(k, ns);
                        }
                    }
                }
                if keep && !st.discarded {
                    st.session = Some(session);
                    return true;
                }
            }
            Err(payload) => {
                out.data.truncate(audio_at);
                out.push_error(id, OutputKind::Failed, None, 0, "RM_ERR_SESSION_FAILED", &panic_message(payload.as_ref()));
                st.closed = true;
            }
        }
        // The session ended (stopped, failed, or closed by the host while it ran).
        self.sessions.fetch_sub(1, Ordering::Relaxed);
        st.items.clear();
        st.scheduled = false;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStock;

    fn buffer(capacity: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(capacity);
        b.extend(std::iter::repeat_n(9u8, capacity.min(10)));
        b
    }

    #[test]
    fn the_stock_lends_the_buffer_put_back_last_first_and_empty() {
        let mut stock = MessageStock::default();
        stock.restock(&mut vec![buffer(100), buffer(200)]);
        let b = stock.take(50);
        assert!(b.capacity() >= 200 && b.is_empty());
        assert!(stock.take(50).capacity() >= 100);
        assert_eq!(stock.take(50).capacity(), 0, "an empty stock lends a new buffer");
        assert_eq!(stock.small.bytes, 0);
    }

    #[test]
    fn long_messages_reuse_long_buffers_and_frames_never_get_one() {
        let mut stock = MessageStock::default();
        let long = MessageStock::LARGE_BYTES + 1;
        stock.restock(&mut vec![buffer(4000), buffer(1 << 20)]);
        assert!(stock.take(3840).capacity() < long, "a frame gets a frame-sized buffer");
        assert!(stock.take(long).capacity() >= 1 << 20);
        assert_eq!(stock.take(3840).capacity(), 0);
    }

    #[test]
    fn each_class_frees_what_passes_its_bound() {
        let mut stock = MessageStock::default();
        for size in [60 << 10, 1 << 20] {
            for _ in 0..2 * MessageStock::MAX_BYTES / size {
                stock.put(buffer(size));
            }
        }
        for (class, size) in [(&stock.small, 60 << 10), (&stock.large, 1 << 20)] {
            assert!(class.bytes <= MessageStock::MAX_BYTES);
            assert!(class.bytes + size > MessageStock::MAX_BYTES, "kept until the bound");
            assert_eq!(class.bytes, class.buffers.iter().map(Vec::capacity).sum::<usize>());
        }
        assert!(stock.large.buffers.iter().all(|b| b.capacity() > MessageStock::LARGE_BYTES));
    }
}
