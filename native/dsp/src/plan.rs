//! The execution plan the engine runs, as produced by the TypeScript optimizer (`src/pipeline/`).
//!
//! ```json
//! { "input": {"sample_rate":48000,"channels":2},
//!   "nodes": [ {"id":"mono","type":"downmix","params":{},"input":null},
//!              {"id":"fused_resample_norm","type":"fused","input":"mono",
//!               "stages":[{"id":"resample","type":"resample","params":{…}}, {"id":"norm","type":"normalize","params":{…}}]},
//!              {"id":"vad","type":"vad","params":{…},"input":"fused_resample_norm"} ],
//!   "output": "fused_resample_norm",
//!   "execution": {"parallel":true,"max_workers":4} }
//! ```
//! Nodes come in topological order; `input: null` reads the session input. Other fields are ignored.

use serde::Deserialize;
use serde_json::Value;

use crate::format::Format;

/// A whole plan.
#[derive(Clone, Debug, Deserialize)]
pub struct Plan {
    /// The session input format the plan was negotiated for.
    pub input: Format,
    /// Nodes in topological order.
    pub nodes: Vec<PlanNode>,
    /// Id of the node whose audio goes back to the client; `None` (an analysis-only pipeline)
    /// sends the session input back unchanged.
    #[serde(default)]
    pub output: Option<String>,
    /// Scheduling hints (docs/pipelines.md `execution`).
    #[serde(default)]
    pub execution: Execution,
}

/// docs/pipelines.md `execution`, from the seed. Accepted and kept in the plan; the engine runs every
/// branch of a session on that session's pinned worker (docs/engine.md: no unpinned helper threads on the
/// per-frame path; a cross-worker split pays only when a plan's branches cost far more than a hand-off,
/// and none of ours do).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Execution {
    /// Independent branches may run concurrently.
    pub parallel: bool,
    /// Most threads one session's branches may use at once.
    pub max_workers: usize,
}

impl Default for Execution {
    fn default() -> Self {
        Execution { parallel: true, max_workers: 4 }
    }
}

/// One node of the plan: a single node, or a `fused` chain of stages.
#[derive(Clone, Debug, Deserialize)]
pub struct PlanNode {
    /// Unique id; events and live params of a single node use it.
    pub id: String,
    /// A node type of docs/pipelines.md, or `"fused"`.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Params of a single node (defaults already filled by the planner; the engine checks them again).
    #[serde(default)]
    pub params: Value,
    /// Upstream node id; `None` reads the session input.
    #[serde(default)]
    pub input: Option<String>,
    /// Stages of a fused node, in processing order.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// May run concurrently with its siblings (docs/pipelines.md `parallel_safe`, from the seed).
    #[serde(default = "yes")]
    pub parallel_safe: bool,
    /// Ids of the document gains constant folding merged into this one, itself first.
    #[serde(default)]
    pub folded: Vec<String>,
    /// Each merged gain's own `db`, in the order of `folded`.
    #[serde(default)]
    pub folded_db: Vec<f64>,
}

fn yes() -> bool {
    true
}

/// One stage of a fused node: an original document node.
#[derive(Clone, Debug, Deserialize)]
pub struct Stage {
    /// The original node id (events and live params address it).
    pub id: String,
    /// Its type (docs/pipelines.md).
    #[serde(rename = "type")]
    pub node_type: String,
    /// Its params.
    #[serde(default)]
    pub params: Value,
    /// See [`PlanNode::folded`].
    #[serde(default)]
    pub folded: Vec<String>,
    /// See [`PlanNode::folded_db`].
    #[serde(default)]
    pub folded_db: Vec<f64>,
}

impl PlanNode {
    /// The stages this node runs: its `stages` when fused, else itself as one stage.
    pub fn stage_list(&self) -> Vec<Stage> {
        if self.node_type == "fused" {
            self.stages.clone()
        } else {
            vec![Stage {
                id: self.id.clone(),
                node_type: self.node_type.clone(),
                params: self.params.clone(),
                folded: self.folded.clone(),
                folded_db: self.folded_db.clone(),
            }]
        }
    }
}

impl Plan {
    /// Parses plan JSON.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid plan: {e}"))
    }
}
