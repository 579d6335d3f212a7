//! Block nodes (`resample`, `denoise`) and the Opus edges of a session must not allocate while
//! processing (docs/engine.md: buffers are sized once; STYLE "No per-frame allocation"). A counting allocator, switched on per thread,
//! checks it over streams cut into awkward block lengths.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use remotemedia_dsp::buffer::AudioBuf;
use remotemedia_dsp::format::Format;
use remotemedia_dsp::node::{BlockNode, Processor};
use remotemedia_dsp::nodes::{build, denoise};
use remotemedia_dsp::opus;
use remotemedia_dsp::plan::Plan;
use remotemedia_dsp::session::{Encodings, Session, Wire};
use remotemedia_dsp::testing::{sine, EventLog};
use serde_json::json;

struct Counting;

thread_local! {
    /// Whether this thread is being watched, and what it allocated meanwhile. Per thread, since
    /// tests run in parallel.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

const CHUNKS: [usize; 8] = [480, 1, 7, 1776, 960, 3, 20_000, 441];

fn block_node(node_type: &str, params: serde_json::Value, input: Format) -> Box<dyn BlockNode> {
    match build(node_type, &params, input).unwrap() {
        Processor::Block(b) => b,
        _ => panic!("{node_type} is a block node"),
    }
}

/// Streams a tone through `node` in [`CHUNKS`], with buffers sized up front from
/// `max_output_frames`, and returns the allocations made by `process` (and `flush` when asked).
fn stream_counting(node: &mut dyn BlockNode, input: Format, with_flush: bool) -> usize {
    let longest = *CHUNKS.iter().max().unwrap();
    let tone = sine(440.0, input.sample_rate, 0.5, longest);
    let mut buf = AudioBuf::new(input.channels, longest);
    let mut out = AudioBuf::new(input.channels, node.max_output_frames(longest));
    let mut log = EventLog::default();
    let mut count = 0;
    for (k, &n) in CHUNKS.iter().enumerate() {
        buf.set_shape(input.channels, n);
        for c in 0..input.channels {
            buf.channel_mut(c).copy_from_slice(&tone[..n]);
        }
        let mut ctx = log.ctx("n", k as u64, 0);
        count += allocations_in(|| node.process(&buf, &mut out, &mut ctx));
    }
    if with_flush {
        let mut ctx = log.ctx("n", 99, 0);
        count += allocations_in(|| node.flush(&mut out, &mut ctx));
    }
    count
}

#[test]
fn resample_never_allocates_while_streaming_or_flushing() {
    for (from, to) in [(48_000, 16_000), (16_000, 48_000), (44_100, 48_000), (48_000, 48_000)] {
        for quality in ["fast", "balanced", "high"] {
            let input = Format::new(from, 2).unwrap();
            let mut node = block_node("resample", json!({ "sample_rate": to, "quality": quality }), input);
            // Twice: the second stream starts from the state flush left behind.
            for round in 0..2 {
                let n = stream_counting(node.as_mut(), input, true);
                assert_eq!(n, 0, "{from}->{to} {quality} round {round}: {n} allocations");
            }
        }
    }
}

#[test]
fn denoise_never_allocates_while_streaming() {
    let input = Format::new(48_000, 2).unwrap();
    let mut node = block_node("denoise", json!({}), input);
    let n = stream_counting(node.as_mut(), input, false);
    assert_eq!(n, 0, "denoise process: {n} allocations");
    // flush resets the model states, which nnnoiseless can only do by building new ones.
    let mut out = AudioBuf::new(2, node.max_output_frames(0));
    let mut log = EventLog::default();
    let mut ctx = log.ctx("n", 0, 0);
    let n = allocations_in(|| node.flush(&mut out, &mut ctx));
    eprintln!("denoise flush (reset included): {n} allocations");
}

#[test]
fn denoise_on_another_thread_is_allocation_free_after_prepare_thread() {
    let input = Format::new(48_000, 1).unwrap();
    // nnnoiseless plans its FFTs per thread: a worker that did not build the node allocates on
    // its first block unless it called prepare_thread first.
    let unprepared = std::thread::spawn(move || {
        let mut node = block_node("denoise", json!({}), input);
        std::thread::spawn(move || stream_counting(node.as_mut(), input, false)).join().unwrap()
    })
    .join()
    .unwrap();
    let prepared = std::thread::spawn(move || {
        let mut node = block_node("denoise", json!({}), input);
        std::thread::spawn(move || {
            denoise::prepare_thread();
            stream_counting(node.as_mut(), input, false)
        })
        .join()
        .unwrap()
    })
    .join()
    .unwrap();
    eprintln!("denoise on a thread that did not build it: {unprepared} allocations without prepare_thread, {prepared} with");
    assert_eq!(prepared, 0);
}

#[test]
fn an_opus_session_never_allocates_per_message() {
    // Opus in and out at 48 kHz stereo, through a resampler to 24 kHz: decode, conceal, encode.
    let plan = Plan::from_json(
        &json!({
            "input": { "sample_rate": 48000, "channels": 2 },
            "nodes": [ { "id": "r", "type": "resample", "params": { "sample_rate": 24000 }, "input": null } ],
            "output": "r"
        })
        .to_string(),
    )
    .unwrap();
    let encodings = Encodings { input: Wire::Opus, output: Wire::Opus };
    let mut session = Session::new(&plan, plan.input, encodings, 4096).unwrap();
    let mut encoder = opus::Encoder::new(plan.input, 0).unwrap();
    let tone = sine(440.0, 48_000, 0.5, 960);
    let mut packet = Vec::with_capacity(opus::MAX_PACKET_BYTES);
    let mut count = 0;
    for k in 0..50u64 {
        encoder.push(&[&tone, &tone], 960);
        packet.clear();
        encoder.encode(false, &mut packet);
        // Every tenth packet is lost: the session conceals it.
        let message: &[u8] = if k % 10 == 9 { &[] } else { &packet };
        count += allocations_in(|| session.process(k, message).unwrap());
    }
    count += allocations_in(|| session.flush(50));
    assert_eq!(count, 0, "opus session: {count} allocations");
}

/// Counts the records a pool hands back; each batch is dropped at once, so its message buffers go
/// back to the stock.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl remotemedia_dsp::pool::Sink for Count {
    fn deliver(&self, batch: remotemedia_dsp::pool::Batch) {
        let records = batch.len();
        // Its buffers are back before the test sees the answer and pushes again.
        drop(batch);
        self.0.fetch_add(records, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn pushing_a_message_allocates_nothing_once_buffers_went_round() {
    use std::sync::{atomic::Ordering, Arc};
    let plan = Plan::from_json(
        &json!({
            "input": { "sample_rate": 48000, "channels": 2 },
            "nodes": [ { "id": "g", "type": "gain", "params": { "db": -3 }, "input": null } ],
            "output": "g"
        })
        .to_string(),
    )
    .unwrap();
    // A 20 ms frame, and one second of audio in one message (a long message has buffers of its own).
    for bytes in [3_840usize, 192_000] {
        let sink = Arc::new(Count::default());
        let pool = remotemedia_dsp::pool::Pool::new(1, false, sink.clone());
        let session = Session::new(&plan, plan.input, Encodings::pcm(remotemedia_dsp::codec::Encoding::S16le, remotemedia_dsp::codec::Encoding::S16le), 1 << 20).unwrap();
        let slot = pool.add_session(session, None, 4);
        let message = vec![1u8; bytes];
        let mut count = 0;
        for k in 0..40 {
            let n = allocations_in(|| {
                pool.push(&slot, &message).unwrap();
            });
            if k >= 10 {
                count += n;
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while sink.0.load(Ordering::SeqCst) <= k {
                assert!(std::time::Instant::now() < deadline, "no answer");
                std::thread::yield_now();
            }
        }
        assert_eq!(count, 0, "{bytes}-byte messages: {count} allocations in 30 pushes");
    }
}
