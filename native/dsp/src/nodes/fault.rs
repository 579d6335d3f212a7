//! Fault-injection nodes, only buildable after [`crate::nodes::enable_fault_nodes`] — never in a
//! server that did not opt in:
//! - `__panic` panics once it has seen `after_frames` input frames, to prove the isolation of SPEC §5
//!   ("a panic in a node closes its session; the worker and all other sessions go on") end to end;
//! - `__stall` blocks its worker thread for `ms` milliseconds, once, when it passes `after_frames`, to
//!   prove that a stuck worker is seen (its heartbeat stops) and its sessions are closed.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioView;
use crate::format::Format;
use crate::node::{parse_params, Ctx, InPlaceNode, NodeCore, NodeError};

const TYPE: &str = "__panic";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PanicParams {
    after_frames: u64,
}

/// Panics when its input position passes `after_frames`.
pub struct PanicNode {
    format: Format,
    after_frames: u64,
}

impl PanicNode {
    /// Builds the node.
    pub fn new(params: &Value, input: Format) -> Result<PanicNode, NodeError> {
        let p: PanicParams = parse_params(TYPE, params)?;
        Ok(PanicNode { format: input, after_frames: p.after_frames })
    }
}

impl NodeCore for PanicNode {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        Err(NodeError::params(TYPE, format!("no param '{name}'")))
    }

    fn reset(&mut self) {}
}

impl InPlaceNode for PanicNode {
    fn process(&mut self, view: &mut AudioView<'_>, ctx: &mut Ctx<'_>) {
        if ctx.position + view.frames() as u64 > self.after_frames {
            panic!("__panic node reached frame {}", self.after_frames);
        }
    }
}

const STALL_TYPE: &str = "__stall";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StallParams {
    after_frames: u64,
    ms: u64,
}

/// Sleeps on its worker thread for `ms` when its input position passes `after_frames` (once).
pub struct StallNode {
    format: Format,
    after_frames: u64,
    stall: Option<Duration>,
}

impl StallNode {
    /// Builds the node.
    pub fn new(params: &Value, input: Format) -> Result<StallNode, NodeError> {
        let p: StallParams = parse_params(STALL_TYPE, params)?;
        Ok(StallNode { format: input, after_frames: p.after_frames, stall: Some(Duration::from_millis(p.ms)) })
    }
}

impl NodeCore for StallNode {
    fn node_type(&self) -> &'static str {
        STALL_TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        Err(NodeError::params(STALL_TYPE, format!("no param '{name}'")))
    }

    fn reset(&mut self) {}
}

impl InPlaceNode for StallNode {
    fn process(&mut self, view: &mut AudioView<'_>, ctx: &mut Ctx<'_>) {
        if ctx.position + view.frames() as u64 > self.after_frames {
            if let Some(d) = self.stall.take() {
                std::thread::sleep(d);
            }
        }
    }
}
