//! What every DSP node is: one of three shapes, plus parameters, events and latency.
//!
//! - [`AnalysisNode`]: reads audio and emits events; the audio passes through untouched, so the
//!   executor hands it the upstream buffer without a copy (vad, spectrum, level, dtmf).
//! - [`InPlaceNode`]: rewrites samples in place, frame count unchanged, channel count possibly
//!   changed (gain, downmix, upmix, normalize, biquad, limiter, noise_gate). Chains of these fuse
//!   into one tiled pass.
//! - [`BlockNode`]: produces a different number of frames than it reads (resample, denoise).
//!
//! Nodes are built once per session from validated params and never allocate while processing.

use std::fmt::{self, Write as _};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::buffer::{AudioBuf, AudioView};
use crate::format::Format;

/// Why a node could not be built or a parameter not applied.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeError {
    /// A parameter is missing, of the wrong type, or out of range.
    BadParams {
        /// The node type.
        node_type: String,
        /// What is wrong.
        message: String,
    },
    /// The node cannot take this input format (e.g. `denoise` fed 16 kHz).
    BadFormat {
        /// The node type.
        node_type: String,
        /// What is wrong.
        message: String,
    },
    /// No node type of that name.
    UnknownType(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::BadParams { node_type, message } => write!(f, "{node_type}: bad params: {message}"),
            NodeError::BadFormat { node_type, message } => write!(f, "{node_type}: bad format: {message}"),
            NodeError::UnknownType(t) => write!(f, "unknown node type '{t}'"),
        }
    }
}

impl std::error::Error for NodeError {}

impl NodeError {
    /// A [`NodeError::BadParams`].
    pub fn params(node_type: &str, message: impl Into<String>) -> NodeError {
        NodeError::BadParams { node_type: node_type.into(), message: message.into() }
    }

    /// A [`NodeError::BadFormat`].
    pub fn format(node_type: &str, message: impl Into<String>) -> NodeError {
        NodeError::BadFormat { node_type: node_type.into(), message: message.into() }
    }
}

/// Deserialises a node's params object (`null` counts as `{}`) into its typed params struct.
/// Param structs use `#[serde(deny_unknown_fields, default)]` so defaults live in one place.
pub fn parse_params<P: DeserializeOwned>(node_type: &str, params: &Value) -> Result<P, NodeError> {
    let value = if params.is_null() { Value::Object(Default::default()) } else { params.clone() };
    serde_json::from_value(value).map_err(|e| NodeError::params(node_type, e.to_string()))
}

/// Checks `lo <= value <= hi`, naming the param when it is not.
pub fn check_range<T: PartialOrd + fmt::Display>(
    node_type: &str,
    name: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<T, NodeError> {
    if value >= lo && value <= hi {
        Ok(value)
    } else {
        Err(NodeError::params(node_type, format!("{name} = {value} is outside {lo}..={hi}")))
    }
}

/// Most bytes of event text one block (one answer) may carry (docs/limits.md: "events per frame and bytes
/// per answer are bounded"). Validation refuses plans whose events would come near it; this bound
/// holds whatever gets past validation (a live `hop` change, say). Events beyond it are dropped.
pub const MAX_EVENT_BYTES_PER_BLOCK: usize = 1 << 20;

/// Where events go while a node processes one block, and where in the stream that block sits.
///
/// Events are written straight into the session's outgoing text as complete wire messages
/// (docs/protocol.md §4), one per line, so neither side re-encodes them. The text of one block is bounded by
/// [`MAX_EVENT_BYTES_PER_BLOCK`].
pub struct Ctx<'a> {
    /// Outgoing event messages, newline-separated.
    pub events: &'a mut String,
    /// Number of events written to `events`.
    pub event_count: &'a mut u32,
    /// The id of the node processing (a fused node's stages keep their own ids).
    pub node_id: &'a str,
    /// The session's message number this block came from (docs/protocol.md §3, "frame n").
    pub frame: u64,
    /// Frames of this node's input stream consumed before this block.
    pub position: u64,
    /// Session input rate / this node's input rate: converts positions to input sample frames.
    pub to_input_frames: f64,
    /// Input sample frames of the session before this node's stream began: a flush resets every
    /// node, and `sample` positions go on counting from where the session was (docs/protocol.md §4).
    pub origin: u64,
}

impl Ctx<'_> {
    /// Emits `{"type":"event","node":…,"name":…,"frame":…,"sample":…,"data":…}` for an event at
    /// `offset` frames into the current block. `data` must write one JSON value (usually an object).
    pub fn emit(&mut self, name: &str, offset: usize, data: fmt::Arguments<'_>) {
        self.emit_at(name, self.position + offset as u64, data);
    }

    /// Like [`Ctx::emit`], but at `absolute_position` frames into this node's input stream, which
    /// may lie in an earlier block: detectors that decide only after looking further (a VAD that
    /// needs two voiced windows, a speech end after the hangover) date the event where it happened.
    pub fn emit_at(&mut self, name: &str, absolute_position: u64, data: fmt::Arguments<'_>) {
        if self.over_budget() {
            return;
        }
        let sample = self.origin + (absolute_position as f64 * self.to_input_frames).round() as u64;
        // Writing to a String cannot fail.
        let _ = writeln!(
            self.events,
            "{{\"type\":\"event\",\"node\":\"{}\",\"name\":\"{}\",\"frame\":{},\"sample\":{},\"data\":{}}}",
            self.node_id, name, self.frame, sample, data
        );
        *self.event_count += 1;
    }

    /// True once this block's event text has reached [`MAX_EVENT_BYTES_PER_BLOCK`]: further events are
    /// dropped, so a node may skip the work of making them.
    pub fn over_budget(&self) -> bool {
        self.events.len() >= MAX_EVENT_BYTES_PER_BLOCK
    }
}

/// Behaviour shared by every node shape.
pub trait NodeCore: Send {
    /// The node type, as in docs/pipelines.md (`"gain"`, `"resample"`, …).
    fn node_type(&self) -> &'static str;

    /// Format of the audio this node outputs (analysis nodes: equal to their input).
    fn output_format(&self) -> Format;

    /// Algorithmic delay: how many output frames the output lags the input by, including any
    /// block the node must fill before it can answer. The plan sums these along the output path.
    fn latency_frames(&self) -> usize {
        0
    }

    /// Applies a live parameter change from the next sample on, ramping where a jump would click.
    /// `value` is the new JSON value of the param `name`; unknown names and bad values are errors.
    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError>;

    /// Forgets all stream state, as if newly built.
    fn reset(&mut self);
}

/// Reads audio, emits events; the audio passes on unchanged.
pub trait AnalysisNode: NodeCore {
    /// Looks at one block (its live frames) and emits events through `ctx`.
    fn analyze(&mut self, input: &AudioBuf, ctx: &mut Ctx<'_>);

    /// End of stream: emit whatever a partial window still owes (e.g. a final `speech_end`).
    fn finish(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// Rewrites samples in place; the frame count never changes.
pub trait InPlaceNode: NodeCore {
    /// Channels this node outputs (equal to its input channels unless it mixes).
    fn output_channels(&self) -> usize {
        self.output_format().channels
    }

    /// Processes the window in place. The view arrives with the input channel count; a node that
    /// changes it calls `view.set_channels`. Called on consecutive windows of a block, in order.
    fn process(&mut self, view: &mut AudioView<'_>, ctx: &mut Ctx<'_>);
}

/// Produces a different number of frames than it reads.
pub trait BlockNode: NodeCore {
    /// Most frames `process` can write for `input_frames` input frames; callers size buffers by it.
    fn max_output_frames(&self, input_frames: usize) -> usize;

    /// Reads the live frames of `input`, writes every output frame they make available into
    /// `output` (setting its shape). Keeps whatever it cannot use yet for the next call.
    fn process(&mut self, input: &AudioBuf, output: &mut AudioBuf, ctx: &mut Ctx<'_>);

    /// End of stream: writes the tail still held (at most `latency_frames()` frames beyond what
    /// the input alone yields), so that the whole output has the length the rate ratio implies
    /// plus the latency. Afterwards the node is reset.
    fn flush(&mut self, output: &mut AudioBuf, ctx: &mut Ctx<'_>);
}

/// A built node, in one of its three shapes.
pub enum Processor {
    /// See [`AnalysisNode`].
    Analysis(Box<dyn AnalysisNode>),
    /// See [`InPlaceNode`].
    InPlace(Box<dyn InPlaceNode>),
    /// See [`BlockNode`].
    Block(Box<dyn BlockNode>),
}

impl Processor {
    /// The shared behaviour of whichever shape this is.
    pub fn core(&self) -> &dyn NodeCore {
        match self {
            Processor::Analysis(n) => n.as_ref(),
            Processor::InPlace(n) => n.as_ref(),
            Processor::Block(n) => n.as_ref(),
        }
    }

    /// The shared behaviour, writable.
    pub fn core_mut(&mut self) -> &mut dyn NodeCore {
        match self {
            Processor::Analysis(n) => n.as_mut(),
            Processor::InPlace(n) => n.as_mut(),
            Processor::Block(n) => n.as_mut(),
        }
    }
}

/// Reads the value of a live param change (docs/protocol.md §5 `params`) as a number, naming the param when it is not.
pub fn param_number(node_type: &str, name: &str, value: &Value) -> Result<f64, NodeError> {
    value.as_f64().ok_or_else(|| NodeError::params(node_type, format!("{name} must be a number")))
}

/// Reads the value of a live param change as a non-negative integer, naming the param when it is not.
pub fn param_uint(node_type: &str, name: &str, value: &Value) -> Result<u64, NodeError> {
    value.as_u64().ok_or_else(|| NodeError::params(node_type, format!("{name} must be a non-negative integer")))
}

/// Converts dBFS / dB to a linear factor.
#[inline]
pub fn db_to_linear(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Converts a linear level to dB, with silence at -inf clamped to `floor`.
#[inline]
pub fn linear_to_db(x: f32, floor: f32) -> f32 {
    if x <= 0.0 {
        floor
    } else {
        (20.0 * x.log10()).max(floor)
    }
}

/// One-pole smoothing coefficient for a time constant of `ms` at `sample_rate`.
#[inline]
pub fn time_constant(ms: f32, sample_rate: u32) -> f32 {
    if ms <= 0.0 {
        0.0
    } else {
        (-1.0 / (ms * 0.001 * sample_rate as f32)).exp()
    }
}

/// A parameter that moves linearly to a new target over a fixed number of samples, so live
/// changes do not click (docs/protocol.md §5).
#[derive(Clone, Copy, Debug)]
pub struct Ramp {
    current: f32,
    target: f32,
    step: f32,
    remaining: u32,
    length: u32,
}

impl Ramp {
    /// A ramp resting at `value`, taking `length` samples for each later change.
    pub fn new(value: f32, length: u32) -> Ramp {
        Ramp { current: value, target: value, step: 0.0, remaining: 0, length: length.max(1) }
    }

    /// Starts moving towards `target`.
    pub fn set(&mut self, target: f32) {
        self.target = target;
        self.remaining = self.length;
        self.step = (target - self.current) / self.length as f32;
    }

    /// Jumps to `value` at once (used by reset).
    pub fn jump(&mut self, value: f32) {
        *self = Ramp::new(value, self.length);
    }

    /// True while a change is in progress.
    #[inline]
    pub fn is_moving(&self) -> bool {
        self.remaining > 0
    }

    /// The value where the ramp rests (or is heading).
    #[inline]
    pub fn target(&self) -> f32 {
        self.target
    }

    /// The next sample's value.
    #[inline]
    pub fn next_value(&mut self) -> f32 {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.current = if self.remaining == 0 { self.target } else { self.current + self.step };
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_reach_their_target_in_length_samples() {
        let mut r = Ramp::new(1.0, 4);
        r.set(0.0);
        let v: Vec<f32> = (0..6).map(|_| r.next_value()).collect();
        assert_eq!(v, vec![0.75, 0.5, 0.25, 0.0, 0.0, 0.0]);
        assert!(!r.is_moving());
    }

    #[test]
    fn events_are_wire_messages_at_input_sample_positions() {
        let mut events = String::new();
        let mut count = 0;
        let mut ctx = Ctx {
            events: &mut events,
            event_count: &mut count,
            node_id: "vad",
            frame: 12,
            position: 1920,
            to_input_frames: 3.0,
            origin: 0,
        };
        ctx.emit("speech_start", 0, format_args!("{{}}"));
        assert_eq!(
            events,
            "{\"type\":\"event\",\"node\":\"vad\",\"name\":\"speech_start\",\"frame\":12,\"sample\":5760,\"data\":{}}\n"
        );
        assert_eq!(count, 1);
    }

    #[test]
    fn event_text_per_block_is_bounded() {
        let mut events = String::new();
        let mut count = 0;
        let mut ctx =
            Ctx { events: &mut events, event_count: &mut count, node_id: "s", frame: 0, position: 0, to_input_frames: 1.0, origin: 0 };
        let big = "x".repeat(1000);
        for i in 0..10_000 {
            ctx.emit("spectrum", i, format_args!("\"{big}\""));
        }
        assert!(ctx.over_budget());
        assert!(events.len() < MAX_EVENT_BYTES_PER_BLOCK + 2000, "{}", events.len());
        assert!(count < 10_000);
        assert!(events.lines().all(|l| l.ends_with("\"}")));
    }

    #[test]
    fn events_can_be_dated_in_an_earlier_block() {
        let mut events = String::new();
        let mut count = 0;
        let mut ctx = Ctx {
            events: &mut events,
            event_count: &mut count,
            node_id: "vad",
            frame: 12,
            position: 1920,
            to_input_frames: 3.0,
            origin: 0,
        };
        ctx.emit_at("speech_end", 1000, format_args!("{{\"duration_ms\":30}}"));
        ctx.emit("speech_start", 5, format_args!("{{}}"));
        assert_eq!(
            events,
            "{\"type\":\"event\",\"node\":\"vad\",\"name\":\"speech_end\",\"frame\":12,\"sample\":3000,\"data\":{\"duration_ms\":30}}\n\
             {\"type\":\"event\",\"node\":\"vad\",\"name\":\"speech_start\",\"frame\":12,\"sample\":5775,\"data\":{}}\n"
        );
        assert_eq!(count, 2);
    }
}
