//! The node catalog of SPEC §2: one module per node type, and [`build`] to construct one.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::format::Format;
use crate::node::{NodeError, Processor};

pub mod denoise;
pub mod fault;
pub mod gain;
pub mod resample;

/// Every node type the engine knows, in SPEC §2 order.
pub const NODE_TYPES: &[&str] = &[
    "gain",
    "resample",
    "denoise",
];

static FAULT_NODES: AtomicBool = AtomicBool::new(false);

/// Makes the `__panic` test node buildable in this process (for isolation tests only).
pub fn enable_fault_nodes() {
    FAULT_NODES.store(true, Ordering::Relaxed);
}

/// Builds a node of `node_type` from its params for an input of `input` format.
pub fn build(node_type: &str, params: &Value, input: Format) -> Result<Processor, NodeError> {
    Ok(match node_type {
        "gain" => Processor::InPlace(Box::new(gain::Gain::new(params, input)?)),
        "resample" => Processor::Block(Box::new(resample::Resample::new(params, input)?)),
        "denoise" => Processor::Block(Box::new(denoise::Denoise::new(params, input)?)),
        "__panic" if FAULT_NODES.load(Ordering::Relaxed) => {
            Processor::InPlace(Box::new(fault::PanicNode::new(params, input)?))
        }
        other => return Err(NodeError::UnknownType(other.to_string())),
    })
}
