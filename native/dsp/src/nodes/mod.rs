//! The node catalog of SPEC §2: one module per node type, and [`build`] to construct one.

use serde_json::Value;

use crate::format::Format;
use crate::node::{NodeError, Processor};

pub mod biquad;
mod dynamics;
pub mod downmix;
pub mod gain;
pub mod level;
pub mod limiter;
pub mod noise_gate;
pub mod normalize;
pub mod upmix;

/// Every node type the engine knows, in SPEC §2 order.
pub const NODE_TYPES: &[&str] = &[
    "gain",
    "downmix",
    "upmix",
    "normalize",
    "biquad",
    "limiter",
    "noise_gate",
    "level",
];

/// Builds a node of `node_type` from its params for an input of `input` format.
pub fn build(node_type: &str, params: &Value, input: Format) -> Result<Processor, NodeError> {
    Ok(match node_type {
        "gain" => Processor::InPlace(Box::new(gain::Gain::new(params, input)?)),
        "downmix" => Processor::InPlace(Box::new(downmix::Downmix::new(params, input)?)),
        "upmix" => Processor::InPlace(Box::new(upmix::Upmix::new(params, input)?)),
        "normalize" => Processor::InPlace(Box::new(normalize::Normalize::new(params, input)?)),
        "biquad" => Processor::InPlace(Box::new(biquad::Biquad::new(params, input)?)),
        "limiter" => Processor::InPlace(Box::new(limiter::Limiter::new(params, input)?)),
        "noise_gate" => Processor::InPlace(Box::new(noise_gate::NoiseGate::new(params, input)?)),
        "level" => Processor::Analysis(Box::new(level::Level::new(params, input)?)),
        other => return Err(NodeError::UnknownType(other.to_string())),
    })
}
