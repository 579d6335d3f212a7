//! `__panic`: a node that panics on purpose once it has seen `after_frames` input frames.
//!
//! It exists to prove the isolation of docs/engine.md (a panic in a node closes its session; the worker
//! and all other sessions go on) end to end, and is only buildable after
//! [`crate::nodes::enable_fault_nodes`] — never in a server that did not opt in.

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
