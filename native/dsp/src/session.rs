//! One streaming session: decode a message, run the graph, encode the answer (docs/protocol.md §3).

use std::array;

use crate::codec::{self, CodecError, Encoding};
use crate::format::{Format, MAX_CHANNELS};
use crate::graph::{Graph, GraphError};
use crate::plan::Plan;

/// Wire encodings of a session's two edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encodings {
    /// What the client sends.
    pub input: Encoding,
    /// What the client gets back.
    pub output: Encoding,
}

/// A session's processing state; owned by one worker at a time.
pub struct Session {
    graph: Graph,
    encodings: Encodings,
    out: Vec<u8>,
    /// Non-finite input samples (NaN, ±Inf in `f32le`) replaced by 0 so far (docs/audio.md).
    non_finite: u64,
}

impl Session {
    /// Builds the graph of `plan`, which must have been negotiated for `input`.
    /// Buffers are sized for messages of up to `max_message_bytes`.
    pub fn new(plan: &Plan, input: Format, encodings: Encodings, max_message_bytes: usize) -> Result<Session, GraphError> {
        if plan.input != input {
            return Err(GraphError::Plan(format!(
                "plan was made for {} Hz × {} channels, session input is {} Hz × {}",
                plan.input.sample_rate, plan.input.channels, input.sample_rate, input.channels
            )));
        }
        let max_frames = (max_message_bytes / (encodings.input.bytes_per_sample() * input.channels)).max(1);
        let graph = Graph::build(plan, max_frames)?;
        let out_cap = {
            let f = graph.output_format();
            // Room for a message's worth of output at the output rate, plus filter tails.
            let frames = max_frames as u64 * u64::from(f.sample_rate) / u64::from(input.sample_rate) + 1024;
            (frames as usize).saturating_mul(f.channels * encodings.output.bytes_per_sample())
        };
        let mut out = Vec::new();
        out.try_reserve_exact(out_cap)
            .map_err(|_| GraphError::Plan(format!("cannot allocate {out_cap} bytes for the session's answers")))?;
        Ok(Session { graph, encodings, out, non_finite: 0 })
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
        let channels = self.graph.input_format().channels;
        let frames = codec::frames_in(bytes.len(), self.encodings.input, channels)?;
        self.graph.reserve_input(frames);
        let input = self.graph.input_mut();
        input.set_shape(channels, frames);
        let mut planes: [&mut [f32]; MAX_CHANNELS] = Default::default();
        let n = input.planes_mut(&mut planes);
        codec::decode(bytes, self.encodings.input, &mut planes[..n])?;
        if self.encodings.input == codec::Encoding::F32le {
            // docs/audio.md: NaN and ±Inf would poison every filter's state for the rest of the session.
            self.non_finite += codec::zero_non_finite(&mut planes[..n]);
        }
        self.graph.run(frame);
        self.encode_output();
        Ok(())
    }

    /// End of stream: the tail every node still holds, encoded into [`Session::output`].
    /// The session can go on streaming afterwards, as if new.
    pub fn flush(&mut self, frame: u64) {
        self.graph.flush(frame);
        self.encode_output();
    }

    fn encode_output(&mut self) {
        let out = self.graph.output();
        let planes: [&[f32]; MAX_CHANNELS] = array::from_fn(|c| if c < out.channels() { out.channel(c) } else { &[] });
        self.out.clear();
        codec::encode(&planes[..out.channels()], out.frames(), self.encodings.output, &mut self.out);
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
