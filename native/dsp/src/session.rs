//! One streaming session: decode a message, run the graph, encode the answer (docs/protocol.md §3).

use std::array;
use std::fmt;

use crate::codec::{self, CodecError, Encoding};
use crate::format::{Format, MAX_CHANNELS};
use crate::graph::{Graph, GraphError, Workspace};
use crate::opus;
use crate::plan::Plan;

/// The wire encoding of one edge of a session: PCM samples, or one Opus packet per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    /// Interleaved samples of one [`Encoding`].
    Pcm(Encoding),
    /// One Opus packet per binary message (crate::opus).
    Opus,
}

impl Wire {
    /// The wire name (docs/protocol.md §2): a PCM encoding's, or `opus`.
    pub const fn name(self) -> &'static str {
        match self {
            Wire::Pcm(e) => e.name(),
            Wire::Opus => "opus",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Wire> {
        if name == "opus" {
            return Some(Wire::Opus);
        }
        Encoding::from_name(name).map(Wire::Pcm)
    }

    /// Bytes of one sample frame of `channels` channels; `None` for Opus, whose packets vary.
    pub fn frame_bytes(self, channels: usize) -> Option<usize> {
        match self {
            Wire::Pcm(e) => Some(e.bytes_per_sample() * channels),
            Wire::Opus => None,
        }
    }
}

impl From<Encoding> for Wire {
    fn from(e: Encoding) -> Wire {
        Wire::Pcm(e)
    }
}

/// Wire encodings of a session's two edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encodings {
    /// What the client sends.
    pub input: Wire,
    /// What the client gets back.
    pub output: Wire,
}

impl Encodings {
    /// PCM both ways.
    pub const fn pcm(input: Encoding, output: Encoding) -> Encodings {
        Encodings { input: Wire::Pcm(input), output: Wire::Pcm(output) }
    }
}

/// Why a session could not be built.
#[derive(Debug)]
pub enum SessionError {
    /// An edge's encoding cannot carry its format (Opus at 44.1 kHz, say).
    Format(String),
    /// The graph could not be built.
    Graph(GraphError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Format(m) => f.write_str(m),
            SessionError::Graph(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<GraphError> for SessionError {
    fn from(e: GraphError) -> SessionError {
        SessionError::Graph(e)
    }
}

/// How messages become input audio.
enum Decode {
    Pcm(Encoding),
    Opus(Box<opus::Decoder>),
}

/// How output audio becomes answers.
enum Encode {
    Pcm(Encoding),
    Opus(Box<opus::Encoder>),
}

/// A session's processing state; owned by one worker at a time.
pub struct Session {
    graph: Graph,
    decode: Decode,
    encode: Encode,
    out: Vec<u8>,
    /// Sample frames the last message decoded to.
    input_frames: usize,
    /// Non-finite input samples (NaN, ±Inf in `f32le`) replaced by 0 so far (docs/audio.md).
    non_finite: u64,
}

impl Session {
    /// Builds the graph of `plan`, which must have been negotiated for `input`.
    /// Buffers are sized for messages of up to `max_message_bytes` (an Opus message decodes to at most 120 ms).
    pub fn new(plan: &Plan, input: Format, encodings: Encodings, max_message_bytes: usize) -> Result<Session, SessionError> {
        if plan.input != input {
            return Err(GraphError::Plan(format!(
                "plan was made for {} Hz × {} channels, session input is {} Hz × {}",
                plan.input.sample_rate, plan.input.channels, input.sample_rate, input.channels
            ))
            .into());
        }
        let (decode, max_frames) = match encodings.input {
            Wire::Pcm(e) => (Decode::Pcm(e), (max_message_bytes / (e.bytes_per_sample() * input.channels)).max(1)),
            Wire::Opus => {
                let decoder = opus::Decoder::new(input).map_err(|e| SessionError::Format(format!("input: {e}")))?;
                let max_frames = decoder.max_frames();
                (Decode::Opus(Box::new(decoder)), max_frames)
            }
        };
        let graph = Graph::build(plan, max_frames)?;
        let f = graph.output_format();
        // Room for a message's worth of output at the output rate, plus filter tails.
        let out_frames = (max_frames as u64 * u64::from(f.sample_rate) / u64::from(input.sample_rate) + 1024) as usize;
        let (encode, out_cap) = match encodings.output {
            Wire::Pcm(e) => (Encode::Pcm(e), out_frames.saturating_mul(f.channels * e.bytes_per_sample())),
            Wire::Opus => {
                let encoder = opus::Encoder::new(f, out_frames).map_err(|e| {
                    SessionError::Format(format!("output: {e} (the pipeline's output is {} Hz × {})", f.sample_rate, f.channels))
                })?;
                (Encode::Opus(Box::new(encoder)), opus::MAX_PACKET_BYTES)
            }
        };
        let mut out = Vec::new();
        out.try_reserve_exact(out_cap)
            .map_err(|_| GraphError::Plan(format!("cannot allocate {out_cap} bytes for the session's answers")))?;
        Ok(Session { graph, decode, encode, out, input_frames: 0, non_finite: 0 })
    }

    /// The graph, for latency and timing queries.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Applies a live parameter change.
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Format of the answers.
    pub fn output_format(&self) -> Format {
        self.graph.output_format()
    }

    /// Processes message number `frame`. On success [`Session::output`] holds the encoded answer
    /// and [`Session::events`] its events. A malformed message changes no state.
    pub fn process(&mut self, frame: u64, bytes: &[u8]) -> Result<(), CodecError> {
        self.decode_and_run(frame, bytes)?;
        self.encode_own_output(false);
        Ok(())
    }

    /// [`Session::process`] as a worker runs it: the answer is appended to `out` (the worker's batch)
    /// instead of kept in [`Session::output`], which this leaves as it was (one copy less per answer),
    /// and the block is processed in `workspace`'s buffers, which every session of the worker shares
    /// ([`Workspace`]), instead of the session's own.
    pub fn process_into(&mut self, frame: u64, bytes: &[u8], out: &mut Vec<u8>, workspace: &mut Workspace) -> Result<(), CodecError> {
        self.graph.borrow_buffers(workspace);
        let result = self.decode_and_run(frame, bytes);
        if result.is_ok() {
            self.encode_output(false, out);
        }
        self.graph.return_buffers(workspace);
        result
    }

    fn decode_and_run(&mut self, frame: u64, bytes: &[u8]) -> Result<(), CodecError> {
        let channels = self.graph.input_format().channels;
        match &mut self.decode {
            Decode::Pcm(encoding) => {
                let encoding = *encoding;
                let frames = codec::frames_in(bytes.len(), encoding, channels)?;
                self.graph.reserve_input(frames);
                let input = self.graph.input_mut();
                input.set_shape(channels, frames);
                let mut planes: [&mut [f32]; MAX_CHANNELS] = Default::default();
                let n = input.planes_mut(&mut planes);
                codec::decode(bytes, encoding, &mut planes[..n])?;
                if encoding == Encoding::F32le {
                    // docs/audio.md: NaN and ±Inf would poison every filter's state for the rest of the session.
                    self.non_finite += codec::zero_non_finite(&mut planes[..n]);
                }
                self.input_frames = frames;
            }
            Decode::Opus(decoder) => {
                // docs/protocol.md §2: an empty message is a lost packet, concealed by the decoder.
                let pcm = decoder.decode(bytes)?;
                let frames = pcm.len() / channels;
                self.graph.reserve_input(frames);
                let input = self.graph.input_mut();
                input.set_shape(channels, frames);
                let mut planes: [&mut [f32]; MAX_CHANNELS] = Default::default();
                let n = input.planes_mut(&mut planes);
                for (i, sample) in pcm.chunks_exact(channels).enumerate() {
                    for (plane, &x) in planes[..n].iter_mut().zip(sample) {
                        plane[i] = x;
                    }
                }
                self.input_frames = frames;
            }
        }
        self.graph.run(frame);
        Ok(())
    }

    /// End of stream: the tail every node still holds, encoded into [`Session::output`].
    /// The session can go on streaming afterwards, as if new.
    pub fn flush(&mut self, frame: u64) {
        self.graph.flush(frame);
        self.encode_own_output(true);
    }

    /// Encodes the output of the last block (or flush) into [`Session::output`].
    fn encode_own_output(&mut self, flush: bool) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.encode_output(flush, &mut out);
        self.out = out;
    }

    /// Appends the encoded output of the last block (or flush) to `dst`.
    fn encode_output(&mut self, flush: bool, dst: &mut Vec<u8>) {
        let out = self.graph.output();
        let planes: [&[f32]; MAX_CHANNELS] = array::from_fn(|c| if c < out.channels() { out.channel(c) } else { &[] });
        match &mut self.encode {
            Encode::Pcm(encoding) => codec::encode(&planes[..out.channels()], out.frames(), *encoding, dst),
            Encode::Opus(encoder) => {
                encoder.push(&planes[..out.channels()], out.frames());
                encoder.encode(flush, dst);
            }
        }
    }

    /// Sample frames the last message decoded to (an Opus packet's length is known only once decoded).
    pub fn input_frames(&self) -> usize {
        self.input_frames
    }

    /// The encoded answer of the last message (or flush).
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Non-finite input samples replaced by 0 since the session began.
    pub fn non_finite_samples(&self) -> u64 {
        self.non_finite
    }

    /// Event messages of the last message, one per line.
    pub fn events(&self) -> &str {
        self.graph.events()
    }

    /// Number of events of the last message.
    pub fn event_count(&self) -> u32 {
        self.graph.event_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's path (the answer appended to its batch) gives the bytes `process` gives, after
    /// whatever the batch held, for PCM and for Opus; a malformed message appends nothing.
    #[test]
    fn process_into_appends_what_process_answers() {
        let plan = Plan::from_json(
            r#"{ "input": { "sample_rate": 48000, "channels": 2 }, "nodes": [{ "id": "g", "type": "gain", "params": { "db": -6 } }], "output": "g" }"#,
        )
        .expect("valid plan");
        let input = Format::new(48_000, 2).expect("valid format");
        for output in [Wire::Pcm(Encoding::S16le), Wire::Pcm(Encoding::Mulaw), Wire::Opus] {
            let encodings = Encodings { input: Wire::Pcm(Encoding::S16le), output };
            let mut by_process = Session::new(&plan, input, encodings, 1 << 16).expect("session");
            let mut by_append = Session::new(&plan, input, encodings, 1 << 16).expect("session");
            let mut batch = b"earlier records".to_vec();
            let mut workspace = Workspace::default();
            for k in 0..5u64 {
                let message: Vec<u8> = (0..3_840u32).map(|i| ((i * 31 + k as u32 * 7) % 251) as u8).collect();
                by_process.process(k, &message).expect("whole frames");
                let before = batch.len();
                by_append.process_into(k, &message, &mut batch, &mut workspace).expect("whole frames");
                assert_eq!(&batch[before..], by_process.output(), "{output:?}, message {k}");
                assert!(by_append.process_into(k, &message[..3], &mut batch, &mut workspace).is_err());
                assert_eq!(batch.len(), before + by_process.output().len());
            }
            assert!(batch.starts_with(b"earlier records"));
        }
    }

    /// Sessions of different shapes that share one workspace, their messages interleaved and of
    /// changing lengths (the longer ones grow the lent buffers), answer exactly what each answers
    /// alone in its own buffers: no block sees what another session's block left in them.
    #[test]
    fn sessions_sharing_a_workspace_answer_as_each_alone() {
        let plans = [
            // Stereo gain: the chain takes the input buffer (graph.rs `takes_input`).
            (r#"{ "input": { "sample_rate": 48000, "channels": 2 }, "nodes": [{ "id": "g", "type": "gain", "params": { "db": -6 } }], "output": "g" }"#, 48_000, 2),
            // Downmix and resample to 16 kHz, read by a vad branch: events as well as audio.
            (r#"{ "input": { "sample_rate": 48000, "channels": 2 }, "nodes": [
                { "id": "chain", "type": "fused", "stages": [
                    { "id": "mono", "type": "downmix", "params": {} },
                    { "id": "to16k", "type": "resample", "params": { "sample_rate": 16000, "quality": "high" } } ] },
                { "id": "vad", "type": "vad", "params": { "aggressiveness": 2, "hangover_ms": 100 }, "input": "chain" } ],
               "output": "chain" }"#, 48_000, 2),
            // Mono 8 kHz up to 48 kHz stereo: blocks that grow six times over and gain a channel.
            (r#"{ "input": { "sample_rate": 8000, "channels": 1 }, "nodes": [
                { "id": "up", "type": "resample", "params": { "sample_rate": 48000, "quality": "balanced" } },
                { "id": "wide", "type": "upmix", "params": { "channels": 2 }, "input": "up" } ], "output": "wide" }"#, 8_000, 1),
        ];
        let encodings = Encodings::pcm(Encoding::S16le, Encoding::S16le);
        let mut alone = Vec::new();
        let mut shared = Vec::new();
        for (json, rate, channels) in plans {
            let plan = Plan::from_json(json).expect("valid plan");
            let input = Format::new(rate, channels).expect("valid format");
            alone.push(Session::new(&plan, input, encodings, 1 << 16).expect("session"));
            shared.push(Session::new(&plan, input, encodings, 1 << 16).expect("session"));
        }
        let mut workspace = Workspace::default();
        let mut batch = Vec::new();
        let mut events_seen = 0;
        // 10, 20, 60 and 5 ms messages, the sessions taken in a different order each round.
        for (k, ms) in [10u32, 20, 60, 20, 5, 60, 10, 20].into_iter().enumerate() {
            for turn in 0..plans.len() {
                let i = (turn + k) % plans.len();
                let (_, rate, channels) = plans[i];
                let samples = (rate * ms / 1000) as usize * channels;
                let message: Vec<u8> = (0..samples)
                    .flat_map(|n| {
                        let t = (n / channels) as f64 / f64::from(rate);
                        let burst = if (k / 2) % 2 == 0 { 0.5 } else { 0.0 };
                        let x = burst * (2.0 * std::f64::consts::PI * (300.0 + 100.0 * i as f64) * t).sin() + 0.01 * ((n * 7919 + k) % 13) as f64 / 13.0;
                        ((x * 32767.0) as i16).to_le_bytes()
                    })
                    .collect();
                alone[i].process(k as u64, &message).expect("whole frames");
                batch.clear();
                shared[i].process_into(k as u64, &message, &mut batch, &mut workspace).expect("whole frames");
                assert_eq!(batch, alone[i].output(), "session {i}, message {k} ({ms} ms)");
                assert_eq!(shared[i].events(), alone[i].events(), "session {i}, message {k}");
                events_seen += alone[i].event_count();
            }
        }
        assert!(events_seen > 0, "the vad branch spoke");
    }
}
