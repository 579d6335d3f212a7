//! napi-rs glue over `remotemedia-dsp`: argument checks, buffer contracts and error mapping.
//! No audio math lives here. Errors carry stable `RM_ERR_*` codes in `error.code`.

use std::sync::Arc;

mod clock;
mod fast;

use napi::bindgen_prelude::{Buffer, Float32Array, Float64ArraySlice};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Error, Status};
use napi_derive::napi;
use remotemedia_dsp::codec::{self, Encoding};
use remotemedia_dsp::format::Format;
use remotemedia_dsp::plan::Plan;
use remotemedia_dsp::pool::{Batch, Pool, PoolOptions, Sink, Slot};
use remotemedia_dsp::session::{Encodings, Session, SessionError, Wire};
use remotemedia_dsp::stats::{LatencyHistogram, Percentiles};
use remotemedia_dsp::tally::{TallyCounts, TALLY_BOUNDS_NS};

/// A result whose error has a string code (`error.code` in JavaScript).
type Result<T> = napi::Result<T, String>;

fn fail(code: &str, message: impl std::fmt::Display) -> Error<String> {
    Error::new(code.to_string(), message.to_string())
}

/// Runs `f`, turning a panic into an `RM_ERR_NATIVE` error: a panic must never unwind into Node
/// (through an `extern "C"` callback it would abort the process). Allocation failures cannot be
/// caught; the engine avoids them with size checks and fallible allocation where sizes come from input.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        Err(fail("RM_ERR_NATIVE", format!("engine panicked: {message}")))
    })
}

/// Decodes interleaved signed 16-bit little-endian PCM to f32 samples in [-1, 1),
/// keeping the interleaving. Throws `RM_ERR_BAD_AUDIO` on an odd byte length.
#[napi(js_name = "s16leToF32")]
pub fn s16le_to_f32(pcm: &[u8]) -> Result<Float32Array> {
    guarded(|| {
        let frames = codec::frames_in(pcm.len(), Encoding::S16le, 1).map_err(|e| fail("RM_ERR_BAD_AUDIO", e))?;
        let mut out = vec![0.0f32; frames];
        codec::decode(pcm, Encoding::S16le, &mut [&mut out[..]]).map_err(|e| fail("RM_ERR_BAD_AUDIO", e))?;
        Ok(Float32Array::new(out))
    })
}

/// Adds the per-frame calls that bypass napi-rs's per-call receiver checks (fast.rs).
#[napi(module_exports)]
pub fn export_fast_calls(exports: napi::bindgen_prelude::Object, env: napi::Env) -> napi::Result<()> {
    use napi::JsValue;
    fast::export(env.raw(), exports.raw())
}

/// Node types the engine can build, in the order of docs/pipelines.md.
#[napi]
pub fn node_types() -> Vec<String> {
    remotemedia_dsp::nodes::NODE_TYPES.iter().map(|s| s.to_string()).collect()
}

/// Makes the `__panic` and `__stall` fault-injection nodes buildable in this process (isolation tests only).
#[napi]
pub fn enable_fault_nodes() {
    remotemedia_dsp::nodes::enable_fault_nodes();
}

/// Options of the engine.
#[napi(object)]
pub struct EngineOptions {
    /// Worker threads.
    pub workers: u32,
    /// Pin each worker to a core. With fewer workers than cores, the workers take the last cores and
    /// the thread that builds the engine (the event loop) is confined to the others (`hostCores`).
    pub pin_cores: bool,
    /// Microseconds an idle worker polls for work before it parks (default 0: park at once).
    pub spin_us: Option<u32>,
}

/// At most one batch per worker is ever queued for the JS thread (the worker waits for the host to
/// take its previous batch before it delivers the next, see `remotemedia_dsp::pool`), so this bound
/// (the largest worker count) is never reached; it makes the queue's bound explicit (issue 11).
const MAX_QUEUED_BATCHES: usize = 256;

/// Tells the JS thread that a batch is ready; JS then takes it with `fastTakeBatch` (fast.rs).
type ReadyCallback = ThreadsafeFunction<(), (), (), Status, false, true, MAX_QUEUED_BATCHES>;

/// Workers' batches wait here for the JS thread, oldest first. The host copies each into one Buffer
/// of its own that it reuses for every batch (`fastTakeBatch`), so the hand-back allocates no
/// memory that JavaScript's collector must track, and the worker gets its buffers back at once.
pub(crate) struct JsSink {
    ready: std::sync::Mutex<std::collections::VecDeque<Batch>>,
    wake: ReadyCallback,
}

impl JsSink {
    fn ready(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Batch>> {
        self.ready.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Sink for JsSink {
    fn deliver(&self, batch: Batch) {
        self.ready().push_back(batch);
        // Never waits: the queue cannot fill (see MAX_QUEUED_BATCHES). While Node shuts down the call
        // fails; the batch then stays queued until the engine is dropped, which hands its buffers back.
        let _ = self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// Bytes a batch takes in the host's buffer:
///
/// ```text
///  u32 count │ count × RECORD_WORDS u32 (the index, little-endian) │ payloads (audio, then text)
/// ```
fn batch_bytes(batch: &Batch) -> usize {
    4 + batch.index().len() * 4 + batch.data().len()
}

/// Copies the oldest waiting batch into `out` (layout: see `batch_bytes`: a u32 record count, the
/// index of 8 u32 per record — session, kind, frame low, frame high, tag, payload offset, audio
/// bytes, text bytes — then the payloads) and returns the bytes written; 0 when none waits; minus
/// the bytes needed when `out` is too small (the batch then stays first in line). JavaScript calls it
/// as `fastTakeBatch(engine.handle, out)` (fast.rs).
fn take_batch_into(sink: &JsSink, out: &mut [u8]) -> i64 {
    let mut ready = sink.ready();
    let Some(batch) = ready.front() else { return 0 };
    let bytes = batch_bytes(batch);
    if bytes > out.len() {
        return -(bytes as i64);
    }
    write_batch(batch, out);
    // Dropped here: the worker gets its buffers back.
    ready.pop_front();
    bytes as i64
}

fn write_batch(batch: &Batch, out: &mut [u8]) {
    let (index, data) = (batch.index(), batch.data());
    out[..4].copy_from_slice(&(batch.len() as u32).to_le_bytes());
    for (dst, w) in out[4..4 + index.len() * 4].chunks_exact_mut(4).zip(index) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    out[4 + index.len() * 4..4 + index.len() * 4 + data.len()].copy_from_slice(data);
}

/// Facts about one worker thread.
#[napi(object)]
pub struct WorkerInfo {
    /// Index.
    pub index: u32,
    /// Core it was pinned to (when pinning was asked for and cores are known).
    pub core: Option<u32>,
    /// Whether pinning succeeded.
    pub pinned: bool,
    /// Sessions living on it.
    pub sessions: u32,
    /// Milliseconds since the worker's loop last beat; it beats at least every 100 ms unless stuck or dead.
    pub since_beat_ms: u32,
}

/// A stream format on the wire.
#[napi(object)]
pub struct StreamFormat {
    /// `s16le`, `f32le`, `mulaw`, `alaw` or `opus`.
    pub encoding: String,
    /// Sample frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u32,
}

/// Latency of one node as built.
#[napi(object)]
pub struct NodeLatencyInfo {
    /// Node or stage id.
    pub id: String,
    /// Type.
    #[napi(js_name = "type")]
    pub node_type: String,
    /// Output rate.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: u32,
    /// Delay in output frames.
    pub latency_frames: u32,
    /// Delay in milliseconds.
    pub latency_ms: f64,
}

/// What the engine builds from a plan: output format and latencies.
#[napi(object)]
pub struct PlanInfo {
    /// Output rate.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: u32,
    /// Every node's latency.
    pub nodes: Vec<NodeLatencyInfo>,
    /// Total algorithmic latency along the path to the output, output frames.
    pub latency_frames: u32,
    /// The same in milliseconds.
    pub latency_ms: f64,
}

fn parse_plan(plan_json: &str) -> Result<Plan> {
    Plan::from_json(plan_json).map_err(|e| fail("RM_ERR_BAD_PLAN", e))
}

fn encoding(name: &str) -> Result<Encoding> {
    Encoding::from_name(name).ok_or_else(|| fail("RM_ERR_BAD_ENCODING", format!("unknown encoding '{name}'")))
}

/// A session edge's encoding: a PCM one or `opus`.
fn wire(name: &str) -> Result<Wire> {
    Wire::from_name(name).ok_or_else(|| fail("RM_ERR_BAD_ENCODING", format!("unknown encoding '{name}'")))
}

fn session_error(e: SessionError) -> Error<String> {
    match e {
        SessionError::Format(m) => fail("RM_ERR_BAD_FORMAT", m),
        SessionError::Graph(g) => fail("RM_ERR_BAD_PLAN", g),
    }
}

fn plan_info(session: &Session) -> PlanInfo {
    let (nodes, frames, ms) = session.graph().latencies();
    let out = session.output_format();
    PlanInfo {
        sample_rate: out.sample_rate,
        channels: out.channels as u32,
        nodes: nodes
            .into_iter()
            .map(|n| NodeLatencyInfo {
                id: n.id,
                node_type: n.node_type,
                sample_rate: n.output_format.sample_rate,
                channels: n.output_format.channels as u32,
                latency_frames: n.latency_frames as u32,
                latency_ms: n.latency_ms,
            })
            .collect(),
        latency_frames: frames as u32,
        latency_ms: ms,
    }
}

fn build_session(plan_json: &str, input: &StreamFormat, output_encoding: &str, max_message_bytes: u32) -> Result<Session> {
    guarded(|| {
        let plan = parse_plan(plan_json)?;
        let format = Format::new(input.sample_rate, input.channels as usize).map_err(|e| fail("RM_ERR_BAD_FORMAT", e))?;
        let encodings = Encodings { input: wire(&input.encoding)?, output: wire(output_encoding)? };
        Session::new(&plan, format, encodings, max_message_bytes as usize).map_err(session_error)
    })
}

/// Builds the graph of a plan without running it: output format and latencies, for planning.
#[napi]
pub fn inspect_plan(plan_json: String) -> Result<PlanInfo> {
    guarded(|| {
        let plan = parse_plan(&plan_json)?;
        let encodings = Encodings::pcm(Encoding::F32le, Encoding::F32le);
        let session = Session::new(&plan, plan.input, encodings, 4096).map_err(session_error)?;
        Ok(plan_info(&session))
    })
}

/// The native engine: a pool of DSP worker threads.
#[napi]
pub struct Engine {
    pool: Arc<Pool>,
    /// Its handle for `fastWake` / `fastTakeBatch` (fast.rs).
    handle: f64,
    /// The cores the building thread was confined to (empty: left alone).
    host_cores: Vec<u32>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        fast::remove_engine(self.handle);
    }
}

#[napi]
impl Engine {
    /// Starts the workers. `onReady` is called on the JS thread when workers have finished outputs
    /// waiting; the host takes them with `fastTakeBatch` (fast.rs).
    #[napi(constructor)]
    pub fn new(options: EngineOptions, #[napi(ts_arg_type = "() => void")] on_ready: ReadyCallback) -> Result<Engine> {
        if options.workers == 0 || options.workers as usize > MAX_QUEUED_BATCHES {
            return Err(fail("RM_ERR_CONFIG", "workers must be 1..=256"));
        }
        let spin_us = options.spin_us.unwrap_or(0);
        if spin_us > 10_000 {
            return Err(fail("RM_ERR_CONFIG", "spinUs must be 0..=10000"));
        }
        let sink = Arc::new(JsSink { ready: Default::default(), wake: on_ready });
        let options = PoolOptions {
            workers: options.workers as usize,
            pin_cores: options.pin_cores,
            spin: std::time::Duration::from_micros(u64::from(spin_us)),
        };
        let pool = Arc::new(Pool::with_options(options, sink.clone()));
        // The constructor runs on the JS thread: it keeps the cores the workers leave (docs/engine.md).
        let host_cores = pool.confine_caller().into_iter().map(|c| c as u32).collect();
        let handle = fast::add_engine(fast::EngineEntry { pool: pool.clone(), sink });
        Ok(Engine { pool, handle, host_cores })
    }

    /// The engine's handle for `fastWake(handle)` (wakes the workers that `fastPush` gave work since
    /// the last call; the host calls it once per turn of its event loop, not once per message) and
    /// `fastTakeBatch(handle, out)` (copies the oldest waiting batch into `out`; see fast.rs).
    #[napi(getter)]
    pub fn handle(&self) -> f64 {
        self.handle
    }

    /// The cores the JS thread that built the engine was confined to: those no worker is pinned to,
    /// when pinning is on and there are fewer workers than cores. Empty when it was left alone.
    #[napi(getter)]
    pub fn host_cores(&self) -> Vec<u32> {
        self.host_cores.clone()
    }

    /// Facts about every worker.
    #[napi]
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.pool
            .workers()
            .into_iter()
            .map(|w| WorkerInfo {
                index: w.index as u32,
                core: w.core.map(|c| c as u32),
                pinned: w.pinned,
                sessions: w.sessions as u32,
                since_beat_ms: w.since_beat_ms.min(u32::MAX as u64) as u32,
            })
            .collect()
    }

    /// Builds a session for `plan` and places it on the least-loaded worker. A frame that would wait
    /// longer than `queueLimitMs` (wall clock) before the worker starts it is dropped (docs/protocol.md (queue bound));
    /// `null` never drops (batch jobs).
    #[napi]
    pub fn create_session(
        &self,
        plan_json: String,
        input: StreamFormat,
        output_encoding: String,
        max_message_bytes: u32,
        queue_limit_ms: Option<u32>,
    ) -> Result<NativeSession> {
        let session = build_session(&plan_json, &input, &output_encoding, max_message_bytes)?;
        let info = plan_info(&session);
        let limit = queue_limit_ms.map(|ms| std::time::Duration::from_millis(u64::from(ms)));
        // 0 for Opus: the engine counts its sample frames once decoded.
        let frame_bytes = wire(&input.encoding)?.frame_bytes(input.channels as usize).unwrap_or(0);
        let slot = self.pool.add_session(session, limit, frame_bytes);
        let handle = fast::add_session(fast::SessionEntry { slot: slot.clone(), pool: self.pool.clone() });
        Ok(NativeSession { slot, pool: self.pool.clone(), info, handle })
    }

    /// Queue wait and per-node-type processing time of every frame, and the workers' waits for the JS
    /// thread to take their answers, since the engine started, for Prometheus: read from one tally per
    /// worker, so its cost does not grow with the sessions.
    #[napi]
    pub fn buckets(&self) -> EngineBuckets {
        let t = self.pool.tally();
        EngineBuckets {
            queue_wait: bucket_counts(&t.queue_wait),
            handback_wait: bucket_counts(&t.handback_wait),
            nodes: t
                .nodes
                .iter()
                .map(|(node_type, c)| TypeBuckets { node_type: (*node_type).to_string(), process: bucket_counts(c) })
                .collect(),
        }
    }

    /// Stops the workers (after the work queued to them). Sessions get no further answers.
    #[napi]
    pub fn shutdown(&self) {
        self.pool.shutdown();
    }
}

/// Counters at the start of `statsInto`'s layout: frames in, frames out, frames dropped, frame errors,
/// events, samples in, non-finite samples.
const STATS_COUNTERS: usize = 7;
/// Values per histogram in `statsInto`'s layout: count, p50, p95, p99, p99.9 and max, microseconds.
const STATS_BLOCK: usize = 6;

fn write_percentiles(out: &mut [f64], h: &LatencyHistogram) {
    let Percentiles { count, p50_us, p95_us, p99_us, p999_us, max_us } = h.percentiles();
    out.copy_from_slice(&[count as f64, p50_us, p95_us, p99_us, p999_us, max_us]);
}

/// A node of `statsInto`'s layout.
#[napi(object)]
pub struct StatsNode {
    /// Node or stage id.
    pub id: String,
    /// Type.
    #[napi(js_name = "type")]
    pub node_type: String,
}

/// Cumulative bucket counts of one series (Prometheus `le` semantics) at `engineBucketSeconds()`.
#[napi(object)]
pub struct BucketCounts {
    /// Values at or below each bound, in bound order.
    pub counts: Vec<f64>,
    /// Sum of all values, seconds.
    pub sum_seconds: f64,
    /// Values recorded.
    pub count: f64,
}

/// Every frame's queue wait and per-node processing time since the engine started, by node type.
#[napi(object)]
pub struct EngineBuckets {
    /// Queue wait per message.
    pub queue_wait: BucketCounts,
    /// Each wait of a worker, its batch of answers full, for the JS thread to take the batch before it.
    pub handback_wait: BucketCounts,
    /// Per node type with observations: processing time per message.
    pub nodes: Vec<TypeBuckets>,
}

/// One node type's processing-time buckets.
#[napi(object)]
pub struct TypeBuckets {
    /// Node type.
    #[napi(js_name = "type")]
    pub node_type: String,
    /// Its buckets.
    pub process: BucketCounts,
}

fn bucket_counts(c: &TallyCounts) -> BucketCounts {
    BucketCounts {
        counts: c.cumulative.iter().map(|&n| n as f64).collect(),
        sum_seconds: c.sum_ns as f64 / 1e9,
        count: c.count as f64,
    }
}

/// The upper bounds (seconds) of the buckets `Engine.buckets()` counts at.
#[napi]
pub fn engine_bucket_seconds() -> Vec<f64> {
    TALLY_BOUNDS_NS.iter().map(|&ns| ns as f64 / 1e9).collect()
}

/// One streaming session on the engine.
#[napi]
pub struct NativeSession {
    slot: Arc<Slot>,
    pool: Arc<Pool>,
    info: PlanInfo,
    /// Its handle for `fastPush` (fast.rs).
    handle: f64,
}

impl Drop for NativeSession {
    fn drop(&mut self) {
        fast::remove_session(self.handle);
    }
}

/// What a call on an ended session throws (here and in `fast`).
const CLOSED: (&str, &str) = ("RM_ERR_SESSION_CLOSED", "session has ended");

fn closed() -> Error<String> {
    fail(CLOSED.0, CLOSED.1)
}

#[napi]
impl NativeSession {
    /// Session id (as in outputs).
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.slot.id() as u32
    }

    /// The worker it lives on.
    #[napi(getter)]
    pub fn worker(&self) -> u32 {
        self.slot.worker() as u32
    }

    /// Output format and latencies.
    #[napi(getter)]
    pub fn info(&self) -> PlanInfo {
        PlanInfo {
            sample_rate: self.info.sample_rate,
            channels: self.info.channels,
            nodes: self
                .info
                .nodes
                .iter()
                .map(|n| NodeLatencyInfo {
                    id: n.id.clone(),
                    node_type: n.node_type.clone(),
                    sample_rate: n.sample_rate,
                    channels: n.channels,
                    latency_frames: n.latency_frames,
                    latency_ms: n.latency_ms,
                })
                .collect(),
            latency_frames: self.info.latency_frames,
            latency_ms: self.info.latency_ms,
        }
    }

    /// The session's handle for `fastPush(handle, message)`: queues one binary message (copied once);
    /// its worker starts on it at the next `fastWake` (or sooner, when awake). Returns the numbers of
    /// queued messages dropped because they had already waited longer than the queue limit, or null
    /// when none were; throws `RM_ERR_SESSION_CLOSED` once the session has ended (fast.rs).
    #[napi(getter)]
    pub fn handle(&self) -> f64 {
        self.handle
    }

    /// Live params for one node, applied between messages; answered by a `ParamsApplied` output with `tag`.
    #[napi]
    pub fn set_params(&self, node: String, params_json: String, tag: u32) -> Result<()> {
        // serde_json refuses nesting deeper than 128 levels, so parsing cannot overflow the stack.
        let value: serde_json::Value =
            serde_json::from_str(&params_json).map_err(|e| fail("RM_ERR_BAD_PARAMS", e))?;
        let serde_json::Value::Object(map) = value else {
            return Err(fail("RM_ERR_BAD_PARAMS", "params must be an object"));
        };
        self.pool.set_params(&self.slot, node, map.into_iter().collect(), tag).map_err(|_| closed())
    }

    /// Emits the remaining tail (a `Flushed` output).
    #[napi]
    pub fn flush(&self) -> Result<()> {
        self.pool.flush(&self.slot).map_err(|_| closed())
    }

    /// Flushes, then ends the session (`Flushed`, then `Stopped`).
    #[napi]
    pub fn stop(&self) -> Result<()> {
        self.pool.stop(&self.slot).map_err(|_| closed())
    }

    /// From now on, keeps the latest answers for a resume (docs/protocol.md §8): at least the last `bytes`
    /// of them. Each `Audio` and `Flushed` output's tag then says where its answer starts, for
    /// `readAnswer`. Call it before the first push. Throws `RM_ERR_OVERLOADED` when the memory cannot be had.
    #[napi]
    pub fn keep_answers(&self, bytes: u32) -> Result<()> {
        if self.pool.keep_answers(&self.slot, bytes as usize) {
            Ok(())
        } else {
            Err(fail("RM_ERR_OVERLOADED", "not enough memory to keep this session's answers for a resume"))
        }
    }

    /// A kept answer of `length` bytes that started at `at` (its output's tag), copied; null once the
    /// session has written over it (or keeps no answers).
    #[napi]
    pub fn read_answer(&self, at: u32, length: u32) -> Option<Buffer> {
        let mut out = Vec::new();
        self.pool.read_answer(&self.slot, at, length as usize, &mut out).then(|| out.into())
    }

    /// Ends the session at once, discarding queued messages.
    #[napi]
    pub fn close(&self) {
        self.pool.close(&self.slot);
    }

    /// Records messages' host-side latencies, received → answer sent, in nanoseconds (the host
    /// collects them and hands them over in one call, not one call per message).
    #[napi]
    pub fn record_latencies(&self, ns: &[f64]) {
        self.slot.record_end_to_end(ns.iter().map(|&ns| ns.max(0.0) as u64));
    }

    /// Whether the session has ended.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.slot.is_closed()
    }

    /// Writes the counters and latency percentiles into `out`, flat (one call and no objects: building
    /// nested objects through Node-API cost twice what the percentiles do): the 7 counters, then 6
    /// values (count, p50, p95, p99, p99.9, max in µs) for queue wait, processing, engine, end to end,
    /// and each node in `statsNodes()` order. Returns how many values that is; writes nothing if `out`
    /// is shorter.
    #[napi]
    pub fn stats_into(&self, mut out: Float64ArraySlice) -> u32 {
        // SAFETY: a view of a JS typed array, written on the JS thread during this call only.
        let out = unsafe { out.as_mut() };
        self.slot.with_stats(|s| {
            let len = STATS_COUNTERS + STATS_BLOCK * (4 + s.nodes.len());
            if out.len() < len {
                return len as u32;
            }
            let counters = [s.frames_in, s.frames_out, s.frames_dropped, s.frame_errors, s.events, s.samples_in, s.non_finite_samples];
            for (o, c) in out.iter_mut().zip(counters) {
                *o = c as f64;
            }
            let histograms = [&s.queue_wait, &s.process, &s.engine, &s.end_to_end].into_iter().chain(s.nodes.iter().map(|n| &n.process));
            for (block, h) in out[STATS_COUNTERS..len].chunks_exact_mut(STATS_BLOCK).zip(histograms) {
                write_percentiles(block, h);
            }
            len as u32
        })
    }

    /// The nodes of `statsInto`'s layout, in order (they do not change during a session).
    #[napi]
    pub fn stats_nodes(&self) -> Vec<StatsNode> {
        self.slot.with_stats(|s| {
            s.nodes.iter().map(|n| StatsNode { id: n.id.clone(), node_type: n.node_type.to_string() }).collect()
        })
    }
}

/// Where the samples of a WAV file are and what they are.
#[napi(object)]
pub struct WavInfo {
    /// Sample frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u32,
    /// `s16le` or `f32le`.
    pub encoding: String,
    /// Byte offset of the first sample.
    pub data_offset: u32,
    /// Bytes of whole sample frames.
    pub data_bytes: u32,
}

/// Parses a WAV header (16-bit PCM or 32-bit float, any rate and channel count).
/// Throws `RM_ERR_BAD_WAV` when it is not one.
#[napi]
pub fn parse_wav(bytes: &[u8]) -> Result<WavInfo> {
    guarded(|| {
        let w = remotemedia_dsp::wav::parse(bytes).map_err(|e| fail("RM_ERR_BAD_WAV", e))?;
        let data_offset = w.data.as_ptr() as usize - bytes.as_ptr() as usize;
        Ok(WavInfo {
            sample_rate: w.format.sample_rate,
            channels: w.format.channels as u32,
            encoding: w.encoding.name().to_string(),
            data_offset: data_offset as u32,
            data_bytes: w.data.len() as u32,
        })
    })
}

/// A canonical 44-byte WAV header for `data_bytes` of samples in `encoding` (`s16le` or `f32le`).
#[napi]
pub fn wav_header(sample_rate: u32, channels: u32, encoding_name: String, data_bytes: u32) -> Result<Buffer> {
    let format = Format::new(sample_rate, channels as usize).map_err(|e| fail("RM_ERR_BAD_FORMAT", e))?;
    let enc = encoding(&encoding_name)?;
    if !matches!(enc, Encoding::S16le | Encoding::F32le) {
        return Err(fail("RM_ERR_BAD_ENCODING", "WAV output is s16le or f32le"));
    }
    let mut out = Vec::with_capacity(44);
    remotemedia_dsp::wav::write_header(format, enc, data_bytes as usize, &mut out);
    Ok(out.into())
}
