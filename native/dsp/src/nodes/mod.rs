//! The node catalog of SPEC §2: one module per node type, and [`build`] to construct one.

use serde_json::Value;

use crate::format::Format;
use crate::node::{NodeError, Processor};

pub mod dtmf;
pub mod gain;
pub mod spectrum;
pub mod vad;

/// Every node type the engine knows, in SPEC §2 order.
pub const NODE_TYPES: &[&str] = &[
    "gain",
    "vad",
    "spectrum",
    "dtmf",
];

/// Builds a node of `node_type` from its params for an input of `input` format.
pub fn build(node_type: &str, params: &Value, input: Format) -> Result<Processor, NodeError> {
    Ok(match node_type {
        "gain" => Processor::InPlace(Box::new(gain::Gain::new(params, input)?)),
        "vad" => Processor::Analysis(Box::new(vad::Vad::new(params, input)?)),
        "spectrum" => Processor::Analysis(Box::new(spectrum::Spectrum::new(params, input)?)),
        "dtmf" => Processor::Analysis(Box::new(dtmf::Dtmf::new(params, input)?)),
        other => return Err(NodeError::UnknownType(other.to_string())),
    })
}
