//! The graph executor: runs a compiled [`Plan`] for one session, one block at a time.
//!
//! ```text
//!  session input ──▶ step 0 (chain: downmix)  ──▶ step 1 (chain: resample → normalize, fused)  ──▶ output
//!                                                     └──▶ step 2 (analysis: vad, reads step 1's buffer)
//! ```
//! A *chain* step owns an output buffer and runs its stages back to back: runs of in-place stages go
//! over the block in cache-sized tiles (fusion: one pass, the tile stays in L1 across stages), block
//! stages (resample, denoise) write a fresh buffer. An *analysis* step reads its upstream buffer
//! directly, without a copy. Every buffer is sized at build time. A block's buffers hold nothing from
//! one block to the next, so a worker lends every graph it runs the same few buffers ([`Workspace`])
//! rather than each session working in its own; those grow, once, to the largest block the worker's
//! sessions send, and processing allocates nothing after that.

use std::time::Instant;

use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::{Format, MAX_CHANNELS};
use crate::node::{param_number, Ctx, NodeError, Processor, MAX_EVENT_BYTES_PER_BLOCK};
use crate::nodes;
use crate::plan::Plan;

/// Most bytes of audio buffers one session's graph may hold (docs/limits.md). Validation refuses plans far
/// below this (`MAX_SESSION_MEMORY_BYTES`); this bound holds whatever reaches the engine, so that no
/// plan can make it allocate without limit and abort the process.
pub const MAX_GRAPH_BUFFER_BYTES: usize = 512 << 20;

/// Input frames the buffers are first allocated for when the largest message allowed is longer:
/// 1,024 frames hold a 20 ms message at 48 kHz (960). A longer block grows them once, on the worker that runs it
/// (`AudioBuf::set_shape`); the budget is still checked for the largest message when the graph is
/// built. Allocating (and zeroing) every buffer for a 64 KiB message up front took most of a
/// session's start-up, on the JS thread.
const INITIAL_BLOCK_FRAMES: usize = 1024;

/// Frames per tile when fused in-place stages run over a block: 256 frames × 8 channels of f32 is
/// 8 KiB, well inside L1 on any server core.
const TILE_FRAMES: usize = 256;

/// Why a plan could not be built.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphError {
    /// The plan's structure is wrong (unknown input, empty fused node, bad output…).
    Plan(String),
    /// A node rejected its params or format.
    Node {
        /// Node (or stage) id.
        id: String,
        /// Why.
        error: NodeError,
    },
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Plan(m) => write!(f, "{m}"),
            GraphError::Node { id, error } => write!(f, "node '{id}': {error}"),
        }
    }
}

impl std::error::Error for GraphError {}

/// Where a step reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Input,
    Step(usize),
}

/// One original node inside a step.
struct StageRt {
    id: String,
    proc: Processor,
    /// Frames of this stage's input consumed so far.
    position: u64,
    /// Session input rate / this stage's input rate.
    to_input_frames: f64,
    /// Session input frames before this stage's stream (re)started at the last flush.
    origin: u64,
    /// The document gains constant folding merged into this stage and each one's own dB: live params
    /// to any of them change its share of the stage's sum. Empty for an unfolded stage.
    parts: Vec<(String, f64)>,
    /// Time spent in this stage during the last block, nanoseconds.
    last_ns: u64,
}

/// A chain step: one node or a fused chain, writing its own output buffer.
struct Step {
    id: String,
    source: Source,
    /// Its buffers are sized as the input's: same channels, no more frames (a chain that neither
    /// adds channels nor upsamples).
    input_sized: bool,
    stages: Vec<StageRt>,
    /// Ping-pong partner for block stages.
    scratch: AudioBuf,
    output_format: Format,
}

/// An analysis branch: reads a finished buffer (of the input or a chain) and emits events. Branches
/// run on the session's own worker, in plan order: docs/engine.md allows no unpinned helper threads on
/// the per-frame path, and splitting one session's branches over other workers of the pinned pool costs
/// a cross-core hand-off per frame that no branch of ours outweighs (see `execution` in plan.rs).
struct Branch {
    source: Source,
    stage: StageRt,
    /// This branch's events of the current block; appended to the graph's.
    events: String,
    event_count: u32,
}

impl Branch {
    fn run(&mut self, input: &AudioBuf, flushing: bool, frame: u64) {
        self.events.clear();
        self.event_count = 0;
        let stage = &mut self.stage;
        let t = Instant::now();
        let at = place(stage);
        if let Processor::Analysis(n) = &mut stage.proc {
            let mut ctx = stage_ctx(&stage.id, at, &mut self.events, &mut self.event_count, frame);
            if flushing {
                n.finish(&mut ctx);
            } else {
                n.analyze(input, &mut ctx);
            }
        }
        stage.position += input.frames() as u64;
        stage.last_ns = t.elapsed().as_nanos() as u64;
    }
}

/// Algorithmic latency of one node as built, for the plan and `ready` message.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLatency {
    /// Node or stage id.
    pub id: String,
    /// Node type.
    pub node_type: String,
    /// Output format of the node.
    pub output_format: Format,
    /// Delay in the node's output frames.
    pub latency_frames: usize,
    /// The same in milliseconds.
    pub latency_ms: f64,
}

/// A built, runnable graph for one session.
pub struct Graph {
    input_format: Format,
    input: AudioBuf,
    steps: Vec<Step>,
    /// Output buffer of each chain step (apart from the steps, so branches on other threads can read
    /// them while the steps' nodes stay on this one).
    outs: Vec<AudioBuf>,
    /// Analysis branches, in plan order.
    branches: Vec<Branch>,
    /// The step whose audio is the output; `None` passes the input through.
    output_step: Option<usize>,
    /// The step that takes the input buffer as its own instead of copying it: the input's only
    /// reader, whose buffer is sized exactly as the input's (see [`takes_input`]).
    input_taker: Option<usize>,
    /// Message number of the block being processed.
    frame: u64,
    /// Session input frames processed so far (event `sample` positions count these).
    input_frames: u64,
    events: String,
    event_count: u32,
}

/// Block buffers a worker lends to each graph it runs ([`Graph::borrow_buffers`]). A block's buffers
/// (the decoded input, each chain's output and scratch) carry nothing from one block to the next, so
/// the sessions of one worker can all work in the same few buffers, which stay in that core's cache,
/// instead of each in buffers of its own that the other sessions' blocks have long evicted by its
/// next frame (docs/engine.md, "Block buffers"). The buffers grow, once, to the largest block any of the
/// worker's sessions has processed; each such block is within its own session's budget.
#[derive(Debug, Default)]
pub struct Workspace {
    buffers: Vec<AudioBuf>,
}

/// The step that may take the input buffer rather than copy it: the only reader of the input (no
/// other step or branch reads it, and the output is a step's), sized as the input is, so that the
/// two buffers can trade places block after block without either growing past its budget.
fn takes_input(steps: &[Step], branches: &[Branch], output_step: Option<usize>) -> Option<usize> {
    let readers = steps.iter().map(|s| s.source).chain(branches.iter().map(|b| b.source));
    if output_step.is_none() || readers.filter(|s| matches!(s, Source::Input)).count() != 1 {
        return None;
    }
    steps.iter().position(|s| matches!(s.source, Source::Input) && s.input_sized)
}

/// Grows `buf` (allocation happens only here, at build time or for an unusually long block).
fn reserve(buf: &mut AudioBuf, channels: usize, frames: usize) {
    if buf.capacity_frames() < frames || buf.channels() < channels {
        let (c, f) = (buf.channels(), buf.frames());
        buf.set_shape(channels.max(c), frames.max(buf.capacity_frames()));
        buf.set_shape(c, f);
    }
}

impl Graph {
    /// Builds every node of `plan` for blocks of up to `max_block_frames` input frames: their buffers must
    /// fit the budget at that size, and are allocated for up to INITIAL_BLOCK_FRAMES until a block needs more.
    pub fn build(plan: &Plan, max_block_frames: usize) -> Result<Graph, GraphError> {
        let input_format = plan.input;
        let mut steps: Vec<Step> = Vec::with_capacity(plan.nodes.len());
        let mut outs: Vec<AudioBuf> = Vec::with_capacity(plan.nodes.len());
        let mut branches: Vec<Branch> = Vec::new();
        // Where each node's audio can be read: a chain step's buffer, or (for an analysis node, which
        // passes audio through) whatever that node reads.
        let mut readable: Vec<(String, Source)> = Vec::with_capacity(plan.nodes.len());
        // Most frames each chain step can output per block: what the next step must be sized for
        // (for the largest message, and for the first allocation: see INITIAL_BLOCK_FRAMES).
        let mut step_frames: Vec<(usize, usize)> = Vec::with_capacity(plan.nodes.len());
        let initial_block_frames = max_block_frames.min(INITIAL_BLOCK_FRAMES);
        let mut budget = Budget::new(MAX_GRAPH_BUFFER_BYTES);
        budget.take(input_format.channels, max_block_frames)?;
        for node in &plan.nodes {
            let source = match &node.input {
                None => Source::Input,
                Some(id) => match readable.iter().find(|(rid, _)| rid == id) {
                    Some((_, src)) => *src,
                    None => {
                        return Err(GraphError::Plan(format!(
                            "node '{}' reads '{id}', which is not an earlier node",
                            node.id
                        )))
                    }
                },
            };
            let (mut format, (source_frames, initial_source_frames)) = match source {
                Source::Input => (input_format, (max_block_frames, initial_block_frames)),
                Source::Step(i) => (steps[i].output_format, step_frames[i]),
            };
            let stage_specs = node.stage_list();
            if stage_specs.is_empty() {
                return Err(GraphError::Plan(format!("fused node '{}' has no stages", node.id)));
            }
            let mut stages = Vec::with_capacity(stage_specs.len());
            let mut max_channels = format.channels;
            // The chain's buffers hold its input and every intermediate block, so they are sized for
            // the largest; the next step only needs what this one outputs.
            let (mut frames_bound, mut initial_bound) = (source_frames, initial_source_frames);
            let (mut peak_frames, mut initial_peak) = (source_frames, initial_source_frames);
            for spec in &stage_specs {
                let stage_input = format;
                let proc = nodes::build(&spec.node_type, &spec.params, format)
                    .map_err(|error| GraphError::Node { id: spec.id.clone(), error })?;
                if let Processor::Block(b) = &proc {
                    frames_bound = b.max_output_frames(frames_bound);
                    peak_frames = peak_frames.max(frames_bound);
                    initial_bound = b.max_output_frames(initial_bound);
                    initial_peak = initial_peak.max(initial_bound);
                }
                format = proc.core().output_format();
                max_channels = max_channels.max(format.channels);
                stages.push(StageRt {
                    id: spec.id.clone(),
                    proc,
                    position: 0,
                    to_input_frames: f64::from(input_format.sample_rate) / f64::from(stage_input.sample_rate),
                    origin: 0,
                    parts: folded_parts(spec),
                    last_ns: 0,
                });
            }
            if stages.len() == 1 && matches!(stages[0].proc, Processor::Analysis(_)) {
                if node.node_type == "fused" {
                    return Err(GraphError::Plan(format!("fused node '{}' holds only an analysis stage", node.id)));
                }
                readable.push((node.id.clone(), source));
                let stage = stages.pop().expect("one stage");
                branches.push(Branch {
                    source,
                    stage,
                    events: String::with_capacity(1024),
                    event_count: 0,
                });
                continue;
            }
            let channels = max_channels.min(MAX_CHANNELS);
            // Output buffer and scratch.
            budget.take(channels, peak_frames)?;
            budget.take(channels, peak_frames)?;
            outs.push(AudioBuf::try_new(channels, initial_peak).ok_or_else(|| budget.refusal())?);
            let scratch = AudioBuf::try_new(channels, initial_peak).ok_or_else(|| budget.refusal())?;
            readable.push((node.id.clone(), Source::Step(steps.len())));
            step_frames.push((frames_bound, initial_bound));
            let input_sized = channels == input_format.channels && (peak_frames, initial_peak) == (source_frames, initial_source_frames);
            steps.push(Step { id: node.id.clone(), source, input_sized, stages, scratch, output_format: format });
        }
        let output_step = match &plan.output {
            None => None,
            Some(id) => match steps.iter().position(|s| &s.id == id) {
                Some(i) => Some(i),
                None if readable.iter().any(|(rid, _)| rid == id) => {
                    return Err(GraphError::Plan(format!("output '{id}' is an analysis node")))
                }
                None => return Err(GraphError::Plan(format!("output '{id}' is not a node of the plan"))),
            },
        };
        let mut input = AudioBuf::try_new(input_format.channels, initial_block_frames).ok_or_else(|| budget.refusal())?;
        input.set_shape(input_format.channels, 0);
        let input_taker = takes_input(&steps, &branches, output_step);
        Ok(Graph {
            input_format,
            input,
            steps,
            outs,
            branches,
            output_step,
            input_taker,
            frame: 0,
            input_frames: 0,
            events: String::with_capacity(4096),
            event_count: 0,
        })
    }

    /// Works in `workspace`'s buffers instead of the graph's own until [`Graph::return_buffers`]: the
    /// next block is decoded into, processed in and read from them. The graph's own buffers wait in
    /// the workspace meanwhile; should the block panic, they stay there, which serves as well.
    pub fn borrow_buffers(&mut self, workspace: &mut Workspace) {
        self.trade_buffers(workspace);
    }

    /// Hands the buffers of [`Graph::borrow_buffers`] back and takes the graph's own again.
    pub fn return_buffers(&mut self, workspace: &mut Workspace) {
        self.trade_buffers(workspace);
    }

    /// Swaps every block buffer with the workspace's of the same place: the input, then each chain's
    /// output and scratch. (Lent buffers may come back in other places, after the input was taken.)
    fn trade_buffers(&mut self, workspace: &mut Workspace) {
        let needed = 1 + self.outs.len() + self.steps.len();
        if workspace.buffers.len() < needed {
            workspace.buffers.resize_with(needed, AudioBuf::default);
        }
        let own = std::iter::once(&mut self.input)
            .chain(self.outs.iter_mut())
            .chain(self.steps.iter_mut().map(|s| &mut s.scratch));
        for (own, lent) in own.zip(workspace.buffers.iter_mut()) {
            std::mem::swap(own, lent);
        }
    }

    /// The session input format.
    pub fn input_format(&self) -> Format {
        self.input_format
    }

    /// Format of the output audio.
    pub fn output_format(&self) -> Format {
        self.output_step.map_or(self.input_format, |i| self.steps[i].output_format)
    }

    /// The input buffer, to decode a block into; call [`Graph::run`] after filling it.
    pub fn input_mut(&mut self) -> &mut AudioBuf {
        &mut self.input
    }

    /// Makes room for blocks of `frames` input frames (allocates only when growing).
    pub fn reserve_input(&mut self, frames: usize) {
        reserve(&mut self.input, self.input_format.channels, frames);
    }

    /// Processes the block in the input buffer as message number `frame`.
    /// Afterwards [`Graph::output`] holds its output and [`Graph::events`] its events.
    pub fn run(&mut self, frame: u64) {
        self.input_frames += self.input.frames() as u64;
        self.run_all(frame, false);
    }

    /// End of stream: drains every node's tail through the rest of the graph. Afterwards
    /// [`Graph::output`] holds the tail of the output. Nodes are left reset.
    pub fn flush(&mut self, frame: u64) {
        let channels = self.input_format.channels;
        self.input.set_shape(channels, 0);
        self.run_all(frame, true);
        let origin = self.input_frames;
        for stage in self.steps.iter_mut().flat_map(|s| s.stages.iter_mut()).chain(self.branches.iter_mut().map(|b| &mut b.stage)) {
            stage.position = 0;
            stage.origin = origin;
            stage.proc.core_mut().reset();
        }
    }

    fn run_all(&mut self, frame: u64, flushing: bool) {
        self.frame = frame;
        self.events.clear();
        self.event_count = 0;
        // Chains first, in plan order (each reads an earlier one); then the analysis branches, which
        // only read finished buffers.
        for (i, step) in self.steps.iter_mut().enumerate() {
            let (before, rest) = self.outs.split_at_mut(i);
            let out = &mut rest[0];
            match step.source {
                // The block needs no copy: the buffers trade places, and the next block is decoded
                // into what was this step's.
                Source::Input if self.input_taker == Some(i) => std::mem::swap(out, &mut self.input),
                Source::Input => out.copy_from(&self.input),
                Source::Step(j) => out.copy_from(&before[j]),
            }
            run_chain(&mut step.stages, out, &mut step.scratch, flushing, &mut self.events, &mut self.event_count, frame);
        }
        for b in &mut self.branches {
            let input = match b.source {
                Source::Input => &self.input,
                Source::Step(j) => &self.outs[j],
            };
            b.run(input, flushing, frame);
            if self.events.len() + b.events.len() <= MAX_EVENT_BYTES_PER_BLOCK {
                self.events.push_str(&b.events);
                self.event_count += b.event_count;
                continue;
            }
            // docs/limits.md: the answer's event text stays bounded; whole events only.
            for line in b.events.split_inclusive('\n') {
                if self.events.len() + line.len() > MAX_EVENT_BYTES_PER_BLOCK {
                    break;
                }
                self.events.push_str(line);
                self.event_count += 1;
            }
        }
    }

    /// Output audio of the last block (planar, in the output format).
    pub fn output(&self) -> &AudioBuf {
        self.output_step.map_or(&self.input, |i| &self.outs[i])
    }

    /// Event messages of the last block, one JSON text per line.
    pub fn events(&self) -> &str {
        &self.events
    }

    /// Number of events of the last block.
    pub fn event_count(&self) -> u32 {
        self.event_count
    }

    /// Time each node took in the last block: (node id, node type, nanoseconds), in plan order.
    pub fn node_timings(&self) -> impl Iterator<Item = (&str, &'static str, u64)> {
        self.stages().map(|st| (st.id.as_str(), st.proc.core().node_type(), st.last_ns))
    }

    /// Number of nodes (stages) in the graph.
    pub fn node_count(&self) -> usize {
        self.stages().count()
    }

    /// Every stage: those of the chains in plan order, then the analysis branches in plan order.
    fn stages(&self) -> impl Iterator<Item = &StageRt> {
        self.steps.iter().flat_map(|s| s.stages.iter()).chain(self.branches.iter().map(|b| &b.stage))
    }

    /// Latency of every node as built, and the total along the path to the output in output frames.
    pub fn latencies(&self) -> (Vec<NodeLatency>, usize, f64) {
        let mut nodes = Vec::new();
        {
            for st in self.stages() {
                let core = st.proc.core();
                let f = core.output_format();
                nodes.push(NodeLatency {
                    id: st.id.clone(),
                    node_type: core.node_type().to_string(),
                    output_format: f,
                    latency_frames: core.latency_frames(),
                    latency_ms: f.ms_of(core.latency_frames()),
                });
            }
        }
        // Walk back from the output; convert each node's delay to seconds and sum.
        let mut total_ms = 0.0;
        let mut at = self.output_step;
        while let Some(i) = at {
            for st in &self.steps[i].stages {
                let core = st.proc.core();
                total_ms += core.output_format().ms_of(core.latency_frames());
            }
            at = match self.steps[i].source {
                Source::Input => None,
                Source::Step(j) => Some(j),
            };
        }
        let out = self.output_format();
        let total_frames = (total_ms * f64::from(out.sample_rate) / 1000.0).round() as usize;
        (nodes, total_frames, total_ms)
    }

    /// Applies a live parameter change to node (or fused stage) `node_id`. A gain that constant folding
    /// merged into another stays addressable: its own `db` changes, and the stage applies the new sum.
    pub fn set_param(&mut self, node_id: &str, name: &str, value: &Value) -> Result<(), GraphError> {
        let stage = self
            .steps
            .iter_mut()
            .flat_map(|s| s.stages.iter_mut())
            .chain(self.branches.iter_mut().map(|b| &mut b.stage))
            .find(|st| st.parts.iter().any(|(id, _)| id == node_id) || (st.parts.is_empty() && st.id == node_id))
            .ok_or_else(|| GraphError::Plan(format!("no node '{node_id}' in this pipeline")))?;
        let node_error = |error| GraphError::Node { id: node_id.to_string(), error };
        if stage.parts.is_empty() || name != "db" {
            return stage.proc.core_mut().set_param(name, value).map_err(node_error);
        }
        let db = param_number("gain", name, value).map_err(node_error)?;
        let total: f64 = stage.parts.iter().map(|(id, own)| if id == node_id { db } else { *own }).sum();
        stage.proc.core_mut().set_param("db", &Value::from(total)).map_err(node_error)?;
        for (id, own) in &mut stage.parts {
            if id == node_id {
                *own = db;
            }
        }
        Ok(())
    }
}

/// The bytes of buffers a graph may still allocate: checked before each allocation, with overflow-safe
/// arithmetic, so that a plan too big for the engine is refused instead of aborting the process.
struct Budget {
    left: usize,
    asked: usize,
}

impl Budget {
    fn new(bytes: usize) -> Budget {
        Budget { left: bytes, asked: 0 }
    }

    /// Takes room for a buffer of `channels` × `frames` f32 samples.
    fn take(&mut self, channels: usize, frames: usize) -> Result<(), GraphError> {
        let bytes = channels.checked_mul(frames).and_then(|n| n.checked_mul(4)).unwrap_or(usize::MAX);
        self.asked = self.asked.saturating_add(bytes);
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(self.refusal()),
        }
    }

    fn refusal(&self) -> GraphError {
        GraphError::Plan(format!(
            "the plan's audio buffers need at least {} bytes, above the engine's bound of {MAX_GRAPH_BUFFER_BYTES}",
            self.asked
        ))
    }
}

/// The folded gains of a plan stage with their own dB (empty unless constant folding merged gains).
fn folded_parts(spec: &crate::plan::Stage) -> Vec<(String, f64)> {
    if spec.folded.len() < 2 || spec.folded.len() != spec.folded_db.len() {
        return Vec::new();
    }
    spec.folded.iter().cloned().zip(spec.folded_db.iter().copied()).collect()
}

/// Where a stage stands in the stream: (position, to_input_frames, origin) of [`Ctx`].
type Place = (u64, f64, u64);

fn place(stage: &StageRt) -> Place {
    (stage.position, stage.to_input_frames, stage.origin)
}

fn stage_ctx<'a>(id: &'a str, at: Place, events: &'a mut String, event_count: &'a mut u32, frame: u64) -> Ctx<'a> {
    let (position, to_input_frames, origin) = at;
    Ctx { events, event_count, node_id: id, frame, position, to_input_frames, origin }
}

/// Runs a chain's stages over `buf` (which holds the chain's input), leaving the result in `buf`.
/// When `flushing`, `buf` arrives holding the upstream tail and each block stage appends its own.
fn run_chain(
    stages: &mut [StageRt],
    buf: &mut AudioBuf,
    scratch: &mut AudioBuf,
    flushing: bool,
    events: &mut String,
    count: &mut u32,
    frame: u64,
) {
    let mut k = 0;
    while k < stages.len() {
        match &stages[k].proc {
            Processor::InPlace(_) => {
                let end = k + stages[k..].iter().take_while(|s| matches!(s.proc, Processor::InPlace(_))).count();
                run_in_place(&mut stages[k..end], buf, events, count, frame);
                k = end;
            }
            Processor::Block(_) => {
                let stage = &mut stages[k];
                let t = Instant::now();
                let consumed = buf.frames() as u64;
                let at = place(stage);
                if let Processor::Block(n) = &mut stage.proc {
                    let mut ctx = stage_ctx(&stage.id, at, events, count, frame);
                    n.process(buf, scratch, &mut ctx);
                    if flushing {
                        // The stage's own tail follows what the upstream tail made it produce.
                        let mut ctx = stage_ctx(&stage.id, at, events, count, frame);
                        n.flush(buf, &mut ctx);
                        scratch.append(buf);
                    }
                }
                std::mem::swap(buf, scratch);
                stage.position += consumed;
                stage.last_ns = t.elapsed().as_nanos() as u64;
                k += 1;
            }
            Processor::Analysis(_) => {
                let stage = &mut stages[k];
                let t = Instant::now();
                let at = place(stage);
                if let Processor::Analysis(n) = &mut stage.proc {
                    let mut ctx = stage_ctx(&stage.id, at, events, count, frame);
                    n.analyze(buf, &mut ctx);
                    if flushing {
                        n.finish(&mut ctx);
                    }
                }
                stage.position += buf.frames() as u64;
                stage.last_ns = t.elapsed().as_nanos() as u64;
                k += 1;
            }
        }
    }
}

/// Fused in-place stages: one pass over the block in tiles, every stage applied to a tile before
/// the next tile is touched.
fn run_in_place(stages: &mut [StageRt], buf: &mut AudioBuf, events: &mut String, count: &mut u32, frame: u64) {
    let frames = buf.frames();
    let in_channels = buf.channels();
    // The widest channel count along the run must fit the buffer while tiles are processed.
    let widest = stages.iter().map(|s| s.proc.core().output_format().channels).max().unwrap_or(in_channels);
    buf.set_shape(widest.max(in_channels), frames);
    for stage in stages.iter_mut() {
        stage.last_ns = 0;
    }
    let mut out_channels = in_channels;
    let mut start = 0;
    while start < frames {
        let len = TILE_FRAMES.min(frames - start);
        let mut view = buf.view_mut(start, len);
        view.set_channels(in_channels);
        for stage in stages.iter_mut() {
            let t = Instant::now();
            if let Processor::InPlace(n) = &mut stage.proc {
                let mut ctx = Ctx {
                    events: &mut *events,
                    event_count: &mut *count,
                    node_id: &stage.id,
                    frame,
                    position: stage.position + start as u64,
                    to_input_frames: stage.to_input_frames,
                    origin: stage.origin,
                };
                n.process(&mut view, &mut ctx);
            }
            stage.last_ns += t.elapsed().as_nanos() as u64;
        }
        out_channels = view.channels();
        start += len;
    }
    if frames == 0 {
        out_channels = stages.last().map_or(in_channels, |s| s.proc.core().output_format().channels);
    }
    for stage in stages.iter_mut() {
        stage.position += frames as u64;
    }
    buf.set_shape(out_channels, frames);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn graph(nodes: Value, output: &str, channels: usize) -> Graph {
        let plan = json!({ "input": { "sample_rate": 48000, "channels": channels }, "nodes": nodes, "output": output });
        Graph::build(&Plan::from_json(&plan.to_string()).expect("valid plan"), 16_384).expect("plan builds")
    }

    fn gain(id: &str, input: Option<&str>) -> Value {
        json!({ "id": id, "type": "gain", "params": { "db": -3 }, "input": input })
    }

    #[test]
    fn only_the_input_s_sole_reader_sized_as_the_input_takes_its_buffer() {
        let vad = |input: Option<&str>| json!({ "id": "vad", "type": "vad", "params": {}, "input": input });
        let to = |rate: u32| json!({ "id": "rs", "type": "resample", "params": { "sample_rate": rate }, "input": null });
        let downmix_then_down = json!([{ "id": "f", "type": "fused", "input": null, "stages": [
            { "id": "mono", "type": "downmix", "params": {} },
            { "id": "to16k", "type": "resample", "params": { "sample_rate": 16000 } },
        ] }, { "id": "vad", "type": "vad", "params": {}, "input": "f" }]);
        assert_eq!(graph(json!([gain("g", None)]), "g", 2).input_taker, Some(0));
        assert_eq!(graph(downmix_then_down, "f", 2).input_taker, Some(0));
        assert_eq!(graph(json!([gain("a", None), gain("b", Some("a"))]), "b", 1).input_taker, Some(0));
        assert_eq!(graph(json!([to(16_000)]), "rs", 1).input_taker, Some(0));
        assert_eq!(graph(json!([gain("g", None), vad(Some("g"))]), "g", 1).input_taker, Some(0));
        // Another reader of the input, an upsampling chain, a chain that adds channels.
        assert_eq!(graph(json!([gain("g", None), vad(None)]), "g", 1).input_taker, None);
        assert_eq!(graph(json!([gain("a", None), gain("b", None)]), "b", 1).input_taker, None);
        assert_eq!(graph(json!([to(96_000)]), "rs", 1).input_taker, None);
        let upmix = json!([{ "id": "up", "type": "upmix", "params": { "channels": 2 }, "input": null }]);
        assert_eq!(graph(upmix, "up", 1).input_taker, None);
    }

    /// Taking the input's buffer gives every block, flush and event the same as copying it, through
    /// blocks that grow the buffers past their first size and empty ones.
    #[test]
    fn taking_the_input_buffer_changes_no_output() {
        let plans = [
            (json!([gain("g", None)]), "g", 2),
            (json!([{ "id": "f", "type": "fused", "input": null, "stages": [
                { "id": "mono", "type": "downmix", "params": {} },
                { "id": "to16k", "type": "resample", "params": { "sample_rate": 16000, "quality": "high" } },
                { "id": "norm", "type": "normalize", "params": {} },
            ] }, { "id": "vad", "type": "vad", "params": {}, "input": "f" }]), "f", 2),
        ];
        for (nodes, output, channels) in plans {
            let mut taking = graph(nodes.clone(), output, channels);
            let mut copying = graph(nodes, output, channels);
            assert!(taking.input_taker.is_some());
            copying.input_taker = None;
            let mut seed = 7u32;
            let mut t = 0usize;
            for (k, frames) in [960, 0, 2_000, 480, 4_096, 17, 960, 960].into_iter().enumerate() {
                for g in [&mut taking, &mut copying] {
                    g.reserve_input(frames);
                    g.input_mut().set_shape(channels, frames);
                }
                for i in 0..frames {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                    let voice = if ((t + i) / 9_600).is_multiple_of(2) { ((t + i) as f32 * 0.06).sin() * 0.5 } else { 0.0 };
                    for c in 0..channels {
                        let x = voice + noise * 0.01 * (c + 1) as f32;
                        taking.input_mut().channel_mut(c)[i] = x;
                        copying.input_mut().channel_mut(c)[i] = x;
                    }
                }
                t += frames;
                if k == 5 {
                    taking.flush(k as u64);
                    copying.flush(k as u64);
                } else {
                    taking.run(k as u64);
                    copying.run(k as u64);
                }
                let (a, b) = (taking.output(), copying.output());
                assert_eq!((a.channels(), a.frames()), (b.channels(), b.frames()), "block {k}");
                for c in 0..a.channels() {
                    assert_eq!(a.channel(c), b.channel(c), "block {k}, channel {c}");
                }
                assert_eq!(taking.events(), copying.events(), "block {k}");
            }
        }
    }
}
