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
    /// Scheduling hints (SPEC §2 `execution`).
    #[serde(default)]
    pub execution: Execution,
}

/// SPEC §2 `execution`, from the seed. Accepted and kept in the plan; the engine runs every branch
/// of a session on that session's pinned worker (SPEC §5: no unpinned helper threads on the per-frame
/// path; a cross-worker split pays only when a plan's branches cost far more than a hand-off, and
/// none of ours do).
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
    /// A SPEC §2 node type, or `"fused"`.
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
    /// May run concurrently with its siblings (SPEC §2 `parallel_safe`, from the seed).
    #[serde(default = "yes")]
    pub parallel_safe: bool,
}

fn yes() -> bool {
    true
}

/// One stage of a fused node: an original document node.
#[derive(Clone, Debug, Deserialize)]
pub struct Stage {
    /// The original node id (events and live params address it).
    pub id: String,
    /// Its SPEC §2 type.
    #[serde(rename = "type")]
    pub node_type: String,
    /// Its params.
    #[serde(default)]
    pub params: Value,
}

impl PlanNode {
    /// The stages this node runs: its `stages` when fused, else itself as one stage.
    pub fn stage_list(&self) -> Vec<Stage> {
        if self.node_type == "fused" {
            self.stages.clone()
        } else {
            vec![Stage { id: self.id.clone(), node_type: self.node_type.clone(), params: self.params.clone() }]
        }
    }
}

impl Plan {
    /// Parses plan JSON.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid plan: {e}"))
    }
}
