//! The graph executor and the worker pool, end to end on real nodes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use remotemedia_dsp::codec::Encoding;
use remotemedia_dsp::format::Format;
use remotemedia_dsp::plan::Plan;
use remotemedia_dsp::pool::{Batch, OutputKind, Pool, Sink};
use remotemedia_dsp::session::{Encodings, Session};
use serde_json::json;

fn plan(v: serde_json::Value) -> Plan {
    Plan::from_json(&v.to_string()).unwrap()
}

const S16: Encodings = Encodings::pcm(Encoding::S16le, Encoding::S16le);

fn s16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn from_s16(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

fn gain_plan(db: f64, channels: usize) -> Plan {
    plan(json!({
        "input": { "sample_rate": 8000, "channels": channels },
        "nodes": [ { "id": "g", "type": "gain", "params": { "db": db }, "input": null } ],
        "output": "g"
    }))
}

#[test]
fn a_fused_chain_equals_its_stages_run_one_by_one() {
    let fused = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "f", "type": "fused", "input": null, "stages": [
            { "id": "a", "type": "gain", "params": { "db": -6 } },
            { "id": "b", "type": "gain", "params": { "db": 3 } } ] } ],
        "output": "f"
    }));
    let separate = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "a", "type": "gain", "params": { "db": -6 }, "input": null },
                   { "id": "b", "type": "gain", "params": { "db": 3 }, "input": "a" } ],
        "output": "b"
    }));
    let input: Vec<i16> = (0..1000).map(|i| ((i * 37) % 2000 - 1000) as i16 * 10).collect();
    let mut outs = Vec::new();
    for p in [fused, separate] {
        let mut s = Session::new(&p, p.input, S16, 4096).unwrap();
        s.process(0, &s16(&input)).unwrap();
        outs.push(from_s16(s.output()));
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0].len(), 1000);
}

/// Buffers are first allocated for 1,024 input frames (graph.rs `INITIAL_BLOCK_FRAMES`), whatever the
/// largest message allowed; a longer block grows them on the worker. Growing changes no output: a
/// session given blocks of up to a second answers exactly what one given 20 ms blocks does.
#[test]
fn blocks_longer_than_the_first_allocation_grow_the_buffers_and_change_nothing() {
    let p = plan(json!({
        "input": { "sample_rate": 48000, "channels": 2 },
        "nodes": [
            { "id": "mono", "type": "downmix", "input": null },
            { "id": "down", "type": "resample", "params": { "sample_rate": 16000, "quality": "high" }, "input": "mono" },
            { "id": "up", "type": "resample", "params": { "sample_rate": 44100, "quality": "balanced" }, "input": "down" },
            { "id": "g", "type": "gain", "params": { "db": -3 }, "input": "up" },
            { "id": "vad", "type": "vad", "input": "down" }
        ],
        "output": "g"
    }));
    let frames: usize = 48_000 * 3;
    let input: Vec<i16> = (0..frames * 2)
        .map(|i| {
            let t = (i / 2) as f64 / 48_000.0;
            (12_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + ((i * 7919) % 2001) as f64 - 1000.0) as i16
        })
        .collect();
    let bytes = s16(&input);
    let run = |max_message_bytes: usize, block_frames: &[usize]| {
        let mut s = Session::new(&p, p.input, S16, max_message_bytes).unwrap();
        let (mut out, mut at, mut k) = (Vec::new(), 0, 0);
        while at < bytes.len() {
            let len = (block_frames[k % block_frames.len()] * 4).min(bytes.len() - at);
            s.process(k as u64, &bytes[at..at + len]).unwrap();
            out.extend_from_slice(s.output());
            (at, k) = (at + len, k + 1);
        }
        s.flush(k as u64);
        out.extend_from_slice(s.output());
        out
    };
    let long = run(1 << 20, &[48_000, 960, 30_000, 7, 5_000, 4_097]);
    let short = run(3840, &[960]);
    assert_eq!(long.len(), short.len());
    assert!(long == short, "the output depends on the block sizes");
    // 3 s at 44.1 kHz mono s16, plus the filters' tails.
    assert!(long.len() >= 3 * 44_100 * 2, "{}", long.len());
}

#[test]
fn plan_errors_name_the_problem() {
    let bad_input = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "a", "type": "gain", "input": "nope" } ], "output": "a" }));
    assert!(Session::new(&bad_input, bad_input.input, S16, 4096).err().unwrap().to_string().contains("'nope'"));
    let bad_type = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "a", "type": "reverb", "input": null } ], "output": "a" }));
    assert!(Session::new(&bad_type, bad_type.input, S16, 4096).err().unwrap().to_string().contains("reverb"));
    let p = gain_plan(0.0, 1);
    let other = Format::new(16_000, 1).unwrap();
    assert!(Session::new(&p, other, S16, 4096).is_err());
}

#[test]
fn malformed_messages_change_no_state() {
    let p = gain_plan(0.0, 2);
    let mut s = Session::new(&p, p.input, S16, 4096).unwrap();
    assert!(s.process(0, &[1, 2, 3]).is_err());
    s.process(1, &s16(&[5, -5])).unwrap();
    assert_eq!(from_s16(s.output()), vec![5, -5]);
}

/// One record of a batch, owned.
#[derive(Clone, Debug)]
struct Output {
    session: u64,
    kind: OutputKind,
    frame: Option<u64>,
    tag: u32,
    audio: Vec<u8>,
    text: String,
}

/// Collects every record; while `gate` is closed, `deliver` blocks (and with it the worker).
#[derive(Default)]
struct Collect {
    outputs: Mutex<Vec<Output>>,
    gate: Mutex<bool>,
    opened: std::sync::Condvar,
    /// Calls of `deliver` so far (including one blocked at the gate).
    deliveries: std::sync::atomic::AtomicUsize,
}

/// Opens the gate when dropped, so that a failing test does not leave the worker blocked forever.
struct OpenOnDrop(Arc<Collect>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set_gate(false);
    }
}

impl Sink for Collect {
    fn deliver(&self, batch: Batch) {
        self.deliveries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut closed = self.gate.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        let owned = batch.records().map(|r| Output {
            session: r.session,
            kind: r.kind,
            frame: r.frame,
            tag: r.tag,
            audio: r.audio.to_vec(),
            text: r.text.to_string(),
        });
        self.outputs.lock().unwrap().extend(owned);
    }
}

impl Collect {
    fn set_gate(&self, closed: bool) {
        *self.gate.lock().unwrap() = closed;
        self.opened.notify_all();
    }

    fn wait_for(&self, pred: impl Fn(&[Output]) -> bool) -> Vec<Output> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let v = self.outputs.lock().unwrap();
                if pred(&v) {
                    return v.clone();
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for outputs");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn a_panicking_session_fails_alone_and_the_worker_goes_on() {
    remotemedia_dsp::nodes::enable_fault_nodes();
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let faulty = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "boom", "type": "__panic", "params": { "after_frames": 100 }, "input": null } ],
        "output": "boom" }));
    let good = gain_plan(-6.0206, 1);
    let a = pool.add_session(Session::new(&faulty, faulty.input, S16, 4096).unwrap(), None, 2);
    let b = pool.add_session(Session::new(&good, good.input, S16, 4096).unwrap(), None, 2);
    for _ in 0..5 {
        let _ = pool.push(&a, &s16(&[1000; 80]));
        pool.push(&b, &s16(&[1000; 80])).unwrap();
    }
    let outs = sink.wait_for(|v| v.iter().filter(|o| o.session == b.id()).count() == 5);
    let a_outs: Vec<_> = outs.iter().filter(|o| o.session == a.id()).collect();
    assert_eq!(a_outs.iter().filter(|o| o.kind == OutputKind::Audio).count(), 1, "first 80 frames pass");
    let failed = a_outs.iter().find(|o| o.kind == OutputKind::Failed).expect("a failure output");
    assert!(failed.text.starts_with("RM_ERR_SESSION_FAILED\n"), "{}", failed.text);
    assert!(a.is_closed());
    assert!(pool.push(&a, &s16(&[0; 80])).is_err());
    let b_frames: Vec<u64> = outs.iter().filter(|o| o.session == b.id()).map(|o| o.frame.unwrap()).collect();
    assert_eq!(b_frames, vec![0, 1, 2, 3, 4]);
    for o in outs.iter().filter(|o| o.session == b.id()) {
        assert_eq!(from_s16(&o.audio), vec![500; 80]);
    }
    assert_eq!(pool.session_count(), 1);
}

#[test]
fn a_worker_stuck_in_one_item_stops_beating_and_new_sessions_avoid_it() {
    remotemedia_dsp::nodes::enable_fault_nodes();
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(2, false, sink.clone());
    std::thread::sleep(Duration::from_millis(250));
    assert!(pool.workers().iter().all(|w| w.since_beat_ms < 200), "idle workers beat");
    let stall = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "s", "type": "__stall", "params": { "after_frames": 0, "ms": 1500 }, "input": null } ],
        "output": "s" }));
    let p = gain_plan(0.0, 1);
    let busy = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    let stuck = pool.add_session(Session::new(&stall, stall.input, S16, 4096).unwrap(), None, 2);
    let _busier = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    assert_ne!(busy.worker(), stuck.worker());
    pool.push(&stuck, &s16(&[0; 80])).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let workers = pool.workers();
    assert!(workers[stuck.worker()].since_beat_ms >= 1000, "{workers:?}");
    assert!(workers[1 - stuck.worker()].since_beat_ms < 200, "{workers:?}");
    // The stuck worker has fewer sessions, yet is not given the new one.
    let fresh = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    assert_ne!(fresh.worker(), stuck.worker());
    sink.wait_for(|v| v.iter().any(|o| o.session == stuck.id()));
    std::thread::sleep(Duration::from_millis(250));
    assert!(pool.workers().iter().all(|w| w.since_beat_ms < 200), "it beats again once the item is done");
}

/// docs/protocol.md (queue bound): a frame is dropped only when it waited longer than the queue limit before the worker
/// started it; drops found at push time come back from `push`, those the worker finds in a record.
#[test]
fn frames_that_wait_past_the_queue_limit_are_dropped_and_named() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(0.0, 1);
    let s = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), Some(Duration::from_millis(30)), 2);
    // Frame 0's batch blocks the worker in `deliver` until the gate opens.
    let _gate = OpenOnDrop(sink.clone());
    sink.set_gate(true);
    pool.push(&s, &s16(&[1; 80])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.deliveries.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the worker never delivered");
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 1..=5 {
        assert_eq!(pool.push(&s, &s16(&[1; 80])).unwrap().dropped, Vec::<u64>::new());
    }
    std::thread::sleep(Duration::from_millis(60));
    // Frames 1..=5 have waited too long: pushing frame 6 drops them.
    assert_eq!(pool.push(&s, &s16(&[1; 80])).unwrap().dropped, vec![1, 2, 3, 4, 5]);
    pool.push(&s, &s16(&[1; 80])).unwrap();
    pool.push(&s, &s16(&[1; 80])).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    // Frames 6..=8 are stale when the worker gets to them.
    sink.set_gate(false);
    let outs = sink.wait_for(|v| v.iter().any(|o| o.kind == OutputKind::Dropped));
    pool.push(&s, &s16(&[1; 80])).unwrap();
    let outs = sink.wait_for(|v| v.len() == outs.len() + 1);
    let seen: Vec<(OutputKind, Option<u64>, u32)> = outs.iter().map(|o| (o.kind, o.frame, o.tag)).collect();
    assert_eq!(
        seen,
        vec![(OutputKind::Audio, Some(0), 0), (OutputKind::Dropped, Some(6), 3), (OutputKind::Audio, Some(9), 0)]
    );
    assert_eq!(s.with_stats(|st| st.frames_dropped), 8);
}

#[test]
fn a_burst_the_worker_absorbs_in_time_is_answered_in_full() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(0.0, 1);
    let s = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), Some(Duration::from_millis(200)), 2);
    // Two seconds of audio at once, far more than 200 ms of it queued.
    for _ in 0..100 {
        assert!(pool.push(&s, &s16(&[1; 160])).unwrap().dropped.is_empty());
    }
    let outs = sink.wait_for(|v| v.len() == 100);
    let frames: Vec<u64> = outs.iter().map(|o| o.frame.unwrap()).collect();
    assert_eq!(frames, (0..100).collect::<Vec<_>>());
    assert!(outs.iter().all(|o| o.kind == OutputKind::Audio));
    assert_eq!(s.with_stats(|st| st.frames_dropped), 0);
}

/// The host's turn-batched hand-off: messages queued with `push_deferred` are all answered, in order,
/// once `wake` is called (one wake-up of the worker for all of them).
#[test]
fn deferred_pushes_are_answered_in_order_after_one_wake() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(0.0, 1);
    let sessions: Vec<_> = (0..3).map(|_| pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2)).collect();
    for k in 0..20i16 {
        for s in &sessions {
            assert!(pool.push_deferred(s, &s16(&[k; 16])).unwrap().dropped.is_empty());
        }
    }
    pool.wake();
    let outs = sink.wait_for(|v| v.len() == 60);
    for s in &sessions {
        let frames: Vec<u64> = outs.iter().filter(|o| o.session == s.id()).map(|o| o.frame.unwrap()).collect();
        assert_eq!(frames, (0..20).collect::<Vec<_>>());
    }
    assert!(outs.iter().all(|o| o.kind == OutputKind::Audio));
}

/// A worker's sessions draw their message buffers from one stock, whatever their message sizes: a
/// buffer a long message grew, lent to a session of short ones next, carries nothing over.
#[test]
fn sessions_sharing_message_buffers_answer_each_its_own_frames() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(0.0, 1);
    let sizes = [1920usize, 160, 7];
    let sessions: Vec<_> = sizes.iter().map(|_| pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2)).collect();
    let frame = |s: usize, k: usize| -> Vec<i16> { (0..sizes[s]).map(|i| (s * 1000 + k * 10 + i % 7) as i16).collect() };
    for k in 0..30 {
        for (s, slot) in sessions.iter().enumerate() {
            pool.push_deferred(slot, &s16(&frame(s, k))).unwrap();
        }
        // Every few rounds the worker runs, so buffers go round between the sessions.
        if k % 3 == 2 {
            pool.wake();
            sink.wait_for(|v| v.len() == (k + 1) * sizes.len());
        }
    }
    let outs = sink.wait_for(|v| v.len() == 30 * sizes.len());
    for (s, slot) in sessions.iter().enumerate() {
        let mine: Vec<&Output> = outs.iter().filter(|o| o.session == slot.id()).collect();
        assert_eq!(mine.len(), 30);
        for (k, o) in mine.iter().enumerate() {
            assert_eq!(o.frame, Some(k as u64));
            assert_eq!(from_s16(&o.audio), frame(s, k), "session {s}, frame {k}");
        }
    }
}

#[test]
fn stop_flushes_then_ends_and_pinning_reports_its_outcome() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(2, true, sink.clone());
    for w in pool.workers() {
        // On Linux with cores available pinning succeeds; either way it is reported, not fatal.
        assert_eq!(w.pinned, w.core.is_some());
    }
    let p = gain_plan(0.0, 1);
    let s = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    pool.push(&s, &s16(&[7; 10])).unwrap();
    pool.stop(&s).unwrap();
    assert!(pool.push(&s, &s16(&[7; 10])).is_err());
    let outs = sink.wait_for(|v| v.iter().any(|o| o.kind == OutputKind::Stopped));
    let kinds: Vec<OutputKind> = outs.iter().map(|o| o.kind).collect();
    assert_eq!(kinds, vec![OutputKind::Audio, OutputKind::Flushed, OutputKind::Stopped]);
    s.with_stats(|stats| {
        assert_eq!((stats.frames_in, stats.frames_out), (1, 1));
        assert_eq!(stats.process.percentiles().count, 1);
        assert_eq!(stats.nodes.len(), 1);
    });
    assert_eq!(pool.session_count(), 0);
}

/// With fewer workers than cores, the workers take the last cores and the host's thread is confined
/// to the others, so that a woken worker never takes the event loop's core; with a worker for every
/// core there is nothing to give and the host's thread is left alone. Run on threads of their own:
/// the confinement is the calling thread's.
#[test]
fn fewer_workers_than_cores_leave_the_first_cores_to_the_host_thread() {
    let all: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    let expected = all.clone();
    std::thread::spawn(move || {
        let pool = Pool::new(1, true, Arc::new(Collect::default()));
        let worker = pool.workers()[0].core;
        let confined = pool.confine_caller();
        let now: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
        if expected.len() >= 2 {
            assert_eq!(worker, expected.last().copied());
            assert_eq!(confined, expected[..expected.len() - 1].to_vec());
            assert_eq!(now, confined, "the calling thread runs where no worker does");
        } else {
            assert!(confined.is_empty());
            assert_eq!(now, expected);
        }
        pool.shutdown();
    })
    .join()
    .unwrap();
    let expected = all;
    std::thread::spawn(move || {
        let pool = Pool::new(expected.len().max(1), true, Arc::new(Collect::default()));
        let cores: Vec<Option<usize>> = pool.workers().iter().map(|w| w.core).collect();
        let first: Vec<Option<usize>> = expected.iter().map(|&c| Some(c)).collect();
        if !expected.is_empty() {
            assert_eq!(cores, first, "one worker per core, in order");
        }
        assert!(pool.confine_caller().is_empty());
        let now: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
        assert_eq!(now, expected, "nothing given, nothing changed");
        let unpinned = Pool::new(1, false, Arc::new(Collect::default()));
        assert!(unpinned.confine_caller().is_empty());
        unpinned.shutdown();
        pool.shutdown();
    })
    .join()
    .unwrap();
}

/// A session that keeps its answers (for a resume) tells in each answer's record where the answer
/// starts, and reads back exactly those bytes, the flushed tail included, until its ring has written
/// over them; one that keeps none reads nothing back.
#[test]
fn kept_answers_read_back_byte_for_byte_until_written_over() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(-6.0, 1);
    let kept = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    let plain = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    assert!(pool.keep_answers(&kept, 1000));
    assert!(!pool.keep_answers(&plain, usize::MAX / 2)); // refused: and it keeps none
    // 1,000 answers of 160 bytes: more than the ring holds (1,000 bytes and room for two batches).
    for k in 0..1000i16 {
        pool.push(&kept, &s16(&[k * 30; 80])).unwrap();
        pool.push(&plain, &s16(&[k; 80])).unwrap();
    }
    pool.flush(&kept).unwrap();
    let outs = sink.wait_for(|v| v.iter().any(|o| o.kind == OutputKind::Flushed));
    let answers: Vec<&Output> = outs.iter().filter(|o| o.session == kept.id()).collect();
    assert_eq!(answers.len(), 1001);
    let mut out = Vec::new();
    let mut read = 0;
    for (i, o) in answers.iter().enumerate() {
        assert_eq!(o.audio.len(), if o.kind == OutputKind::Flushed { 0 } else { 160 });
        if pool.read_answer(&kept, o.tag, o.audio.len(), &mut out) {
            assert_eq!(out, o.audio, "answer {i}");
            read += 1;
        } else {
            assert!(read == 0, "answer {i} lost after a readable one");
        }
    }
    assert!((7..1001).contains(&read), "{read} answers readable");
    assert!(!pool.read_answer(&plain, 0, 160, &mut out));
    assert!(outs.iter().filter(|o| o.session == plain.id()).all(|o| o.tag == 0));
    pool.close(&kept);
    assert!(!pool.read_answer(&kept, answers[999].tag, 160, &mut out));
}

/// Answers larger than the room a ring starts with for answers in flight (two batches of 64 KiB and
/// 8 KiB answers) grow it: the ring still holds the bytes the host may ask back and two batches' worth
/// of such answers, so a resume at the edge of RESUME_BUFFER_BYTES finds every answer its log holds.
#[test]
fn answers_larger_than_a_batch_grow_the_ring_they_are_kept_in() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(-6.0, 1);
    let big = 40_000; // samples: answers of 80,000 bytes
    let kept = pool.add_session(Session::new(&p, p.input, S16, 2 * big).unwrap(), None, 2);
    assert!(pool.keep_answers(&kept, 1000));
    for k in 0..12i16 {
        pool.push(&kept, &s16(&vec![k * 100; big])).unwrap();
    }
    pool.flush(&kept).unwrap();
    let outs = sink.wait_for(|v| v.iter().any(|o| o.kind == OutputKind::Flushed));
    let answers: Vec<&Output> = outs.iter().filter(|o| o.kind == OutputKind::Audio).collect();
    assert_eq!(answers.len(), 12);
    let mut out = Vec::new();
    let readable: Vec<usize> = (0..12)
        .filter(|&i| pool.read_answer(&kept, answers[i].tag, 2 * big, &mut out) && out == answers[i].audio)
        .collect();
    // 1,000 + 2 × (65,536 + 80,000) bytes: the last 3 answers, whole (the room it started with, 1,000 +
    // 2 × (65,536 + 8,192), held only the last one).
    assert_eq!(readable, vec![9, 10, 11]);
}

/// A level meter, then a gain (8 kHz mono): a node with timings of its own ahead of the output.
fn metered_gain_plan() -> Plan {
    plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "lvl", "type": "level", "input": null }, { "id": "g", "type": "gain", "params": { "db": -3 }, "input": "lvl" } ],
        "output": "g"
    }))
}

/// A closed session keeps its counters, but its histograms go back to the stock at once (the host may
/// hold the slot until its garbage collector runs).
#[test]
fn closing_a_session_keeps_its_counters_and_gives_its_histograms_back() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = metered_gain_plan();
    let s = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    for _ in 0..3 {
        pool.push(&s, &s16(&[100; 160])).unwrap();
    }
    sink.wait_for(|v| v.len() == 3);
    let counts = |s: &Arc<remotemedia_dsp::pool::Slot>| {
        s.with_stats(|st| (st.frames_in, st.frames_out, st.process.percentiles().count, st.nodes[0].process.percentiles().count))
    };
    assert_eq!(counts(&s), (3, 3, 3, 3));
    pool.close(&s);
    assert_eq!(counts(&s), (3, 3, 0, 0));
    assert!(pool.push(&s, &s16(&[100; 160])).is_err());
    // The pool-wide tally is not the session's: it keeps what the session's frames added.
    let t = pool.tally();
    assert_eq!(t.queue_wait.count, 3);
    assert_eq!(t.nodes.iter().find(|(ty, _)| *ty == "level").map(|(_, c)| c.count), Some(3));
}

/// The pool's tally (for Prometheus) adds up every worker's, at the same bounds for every session.
#[test]
fn the_tally_counts_every_frame_of_every_worker_once() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(2, false, sink.clone());
    let p = metered_gain_plan();
    let sessions: Vec<_> = (0..4).map(|_| pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2)).collect();
    assert_eq!(sessions.iter().map(|s| s.worker()).collect::<std::collections::HashSet<_>>().len(), 2);
    for _ in 0..5 {
        for s in &sessions {
            pool.push(s, &s16(&[100; 160])).unwrap();
        }
    }
    sink.wait_for(|v| v.len() == 20);
    let t = pool.tally();
    assert_eq!(t.queue_wait.count, 20);
    assert_eq!(t.queue_wait.cumulative.last().copied(), Some(20), "every wait under a second");
    let level = t.nodes.iter().find(|(ty, _)| *ty == "level").map(|(_, c)| c.clone()).unwrap();
    assert_eq!(level.count, 20);
    assert!(level.cumulative.windows(2).all(|w| w[0] <= w[1]));
    let per_session: u64 = sessions.iter().map(|s| s.with_stats(|st| st.queue_wait.percentiles().count)).sum();
    assert_eq!(per_session, 20);
    assert_eq!(t.handback_wait.count, 0, "a host that takes each batch at once never holds a worker up");
}

/// docs/pipelines.md `execution.parallel`: whatever the execution hints, the result is the same, event
/// order included (branches run on the session's worker, in plan order).
#[test]
fn parallel_branches_give_the_same_events_as_sequential_ones() {
    let (planes, rate) = remotemedia_dsp::testing::read_fixture_audio("speech-48k-mono.wav");
    let bytes = s16(&planes[0].iter().map(|&x| remotemedia_dsp::codec::f32_to_s16(x)).collect::<Vec<_>>());
    let mut results = Vec::new();
    for (parallel, max_workers) in [(false, 1), (true, 4), (true, 2)] {
        let p = plan(json!({
            "input": { "sample_rate": rate, "channels": 1 },
            "nodes": [
                { "id": "g", "type": "gain", "params": { "db": -1 }, "input": null },
                { "id": "spec", "type": "spectrum", "params": { "fft_size": 2048, "hop": 512, "bands": 16 }, "input": "g" },
                { "id": "lvl", "type": "level", "params": {}, "input": "g" },
                { "id": "vad", "type": "vad", "params": {}, "input": null },
                { "id": "tones", "type": "dtmf", "params": {}, "input": "g", "parallel_safe": false }
            ],
            "output": "g",
            "execution": { "parallel": parallel, "max_workers": max_workers }
        }));
        let mut s = Session::new(&p, p.input, S16, 1 << 20).unwrap();
        let mut events = String::new();
        let mut audio = Vec::new();
        for (n, msg) in bytes.chunks(1920).enumerate() {
            s.process(n as u64, msg).unwrap();
            events.push_str(s.events());
            audio.extend_from_slice(s.output());
        }
        s.flush(9999);
        events.push_str(s.events());
        results.push((events, audio));
    }
    assert!(results[0].0.lines().count() > 100, "expected many events");
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn live_params_address_each_gain_that_constant_folding_merged() {
    // The optimizer folded a (-3 dB) and b (-6 dB) into one stage of -9 dB.
    let p = plan(json!({
        "input": { "sample_rate": 8000, "channels": 1 },
        "nodes": [ { "id": "a", "type": "gain", "params": { "db": -9 }, "input": null,
                     "folded": ["a", "b"], "folded_db": [-3, -6] } ],
        "output": "a"
    }));
    let mut s = Session::new(&p, p.input, S16, 65536).unwrap();
    let input = vec![16000i16; 4000];
    let level = |s: &mut Session, frame: u64| {
        s.process(frame, &s16(&input)).unwrap();
        *from_s16(s.output()).last().unwrap()
    };
    let db_of = |x: i16| 20.0 * (f64::from(x) / 16000.0).log10();
    assert!((db_of(level(&mut s, 0)) + 9.0).abs() < 0.01);
    // b alone goes to 0 dB: a's -3 dB stays.
    s.graph_mut().set_param("b", "db", &json!(0)).unwrap();
    assert!((db_of(level(&mut s, 1)) + 3.0).abs() < 0.01);
    // Then a to +1 dB: the sum follows each node's own value.
    s.graph_mut().set_param("a", "db", &json!(1)).unwrap();
    assert!((db_of(level(&mut s, 2)) - 1.0).abs() < 0.01);
    // A sum outside gain's bounds is refused and changes nothing.
    assert!(s.graph_mut().set_param("b", "db", &json!(48)).is_err());
    assert!((db_of(level(&mut s, 3)) - 1.0).abs() < 0.01);
    assert!(s.graph_mut().set_param("c", "db", &json!(0)).is_err());
}

/// Keeps every batch it is given, as a host that has not read them yet does: no buffers go back.
#[derive(Default)]
struct Hold {
    batches: Mutex<Vec<Batch>>,
}

impl Sink for Hold {
    fn deliver(&self, batch: Batch) {
        self.batches.lock().unwrap().push(batch);
    }
}

/// One worker given `frames` small frames of one session, far more than two batches of records,
/// returned once it has handed the host its first batch: the next fills up behind it.
fn held_worker(frames: usize) -> (Arc<Hold>, Pool) {
    let sink = Arc::new(Hold::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(0.0, 1);
    let s = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 2);
    for _ in 0..frames {
        pool.push(&s, &s16(&[1; 80])).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.batches.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the worker never delivered");
        std::thread::sleep(Duration::from_millis(1));
    }
    (sink, pool)
}

/// A worker whose batch fills while the host still holds the one before it waits for the host (its
/// frames wait in their queue meanwhile), and the tally counts that wait for Prometheus.
#[test]
fn a_worker_held_up_by_the_host_counts_the_wait() {
    let frames = 600;
    let (sink, pool) = held_worker(frames);
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = Duration::from_millis(60);
    std::thread::sleep(held);
    // Then take batches as a host does, each as soon as it is there, until every frame is answered.
    let mut answered = 0;
    while answered < frames {
        assert!(Instant::now() < deadline, "answered {answered} of {frames}");
        let taken = std::mem::take(&mut *sink.batches.lock().unwrap());
        answered += taken.iter().map(Batch::len).sum::<usize>();
        drop(taken);
        std::thread::sleep(Duration::from_millis(1));
    }
    let wait = pool.tally().handback_wait;
    assert!(wait.count >= 1, "{wait:?}");
    assert!(wait.sum_ns >= held.as_nanos() as u64, "{wait:?}");
    assert_eq!(wait.cumulative.last().copied(), Some(wait.count), "every wait under a second");
    pool.shutdown();
}

/// `Pool::shutdown` ends while a worker has more work than fits in a batch and the host holds its
/// other batch (a host shutting down stops reading; the server calls this from its only thread).
#[test]
fn shutdown_ends_while_the_host_holds_a_batch_and_work_is_queued() {
    let (_sink, pool) = held_worker(2000);
    std::thread::sleep(Duration::from_millis(100));
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pool.shutdown();
        let _ = done.send(());
    });
    assert!(ended.recv_timeout(Duration::from_secs(5)).is_ok(), "shutdown did not end");
}

/// An empty message is a block of no frames. As a worker's first block, its block buffers (lent to
/// every session, graph.rs `Workspace`) have never had room for a frame; it is answered, empty, and
/// so is the session's next frame.
#[test]
fn an_empty_message_as_a_workers_first_block_is_answered_empty() {
    let sink = Arc::new(Collect::default());
    let pool = Pool::new(1, false, sink.clone());
    let p = gain_plan(0.0, 2);
    let s = pool.add_session(Session::new(&p, p.input, S16, 4096).unwrap(), None, 4);
    pool.push(&s, &[]).unwrap();
    pool.push(&s, &s16(&[5, -5, 7, -7])).unwrap();
    let outs = sink.wait_for(|v| v.len() == 2);
    assert!(outs.iter().all(|o| o.kind == OutputKind::Audio), "{outs:?}");
    assert!(outs[0].audio.is_empty());
    assert_eq!(from_s16(&outs[1].audio), [5, -5, 7, -7]);
}
