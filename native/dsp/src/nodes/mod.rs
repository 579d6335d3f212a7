//! The node catalog of docs/pipelines.md: one module per node type, and [`build`] to construct one.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::format::Format;
use crate::node::{NodeError, Processor};

pub mod aec;
pub mod biquad;
pub mod denoise;
pub mod downmix;
pub mod dtmf;
mod dynamics;
pub mod fault;
pub mod gain;
pub mod level;
pub mod limiter;
pub mod noise_gate;
pub mod normalize;
pub mod resample;
pub mod spectrum;
pub mod upmix;
pub mod vad;

/// Every node type the engine knows, in the order of docs/pipelines.md.
pub const NODE_TYPES: &[&str] = &[
    "gain",
    "downmix",
    "upmix",
    "resample",
    "normalize",
    "biquad",
    "limiter",
    "noise_gate",
    "denoise",
    "vad",
    "spectrum",
    "level",
    "dtmf",
    "aec",
];

static FAULT_NODES: AtomicBool = AtomicBool::new(false);

/// Makes the `__panic` and `__stall` test nodes buildable in this process (for isolation tests only).
pub fn enable_fault_nodes() {
    FAULT_NODES.store(true, Ordering::Relaxed);
}

/// Builds a node of `node_type` from its params for an input of `input` format.
pub fn build(node_type: &str, params: &Value, input: Format) -> Result<Processor, NodeError> {
    Ok(match node_type {
        "gain" => Processor::InPlace(Box::new(gain::Gain::new(params, input)?)),
        "vad" => Processor::Analysis(Box::new(vad::Vad::new(params, input)?)),
        "spectrum" => Processor::Analysis(Box::new(spectrum::Spectrum::new(params, input)?)),
        "dtmf" => Processor::Analysis(Box::new(dtmf::Dtmf::new(params, input)?)),
        "downmix" => Processor::InPlace(Box::new(downmix::Downmix::new(params, input)?)),
        "upmix" => Processor::InPlace(Box::new(upmix::Upmix::new(params, input)?)),
        "normalize" => Processor::InPlace(Box::new(normalize::Normalize::new(params, input)?)),
        "biquad" => Processor::InPlace(Box::new(biquad::Biquad::new(params, input)?)),
        "limiter" => Processor::InPlace(Box::new(limiter::Limiter::new(params, input)?)),
        "noise_gate" => Processor::InPlace(Box::new(noise_gate::NoiseGate::new(params, input)?)),
        "level" => Processor::Analysis(Box::new(level::Level::new(params, input)?)),
        "resample" => Processor::Block(Box::new(resample::Resample::new(params, input)?)),
        "denoise" => Processor::Block(Box::new(denoise::Denoise::new(params, input)?)),
        "aec" => Processor::Block(Box::new(aec::Aec::new(params, input)?)),
        "__panic" if FAULT_NODES.load(Ordering::Relaxed) => {
            Processor::InPlace(Box::new(fault::PanicNode::new(params, input)?))
        }
        "__stall" if FAULT_NODES.load(Ordering::Relaxed) => {
            Processor::InPlace(Box::new(fault::StallNode::new(params, input)?))
        }
        other => return Err(NodeError::UnknownType(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_type_builds_and_nothing_else_does() {
        let f48 = Format::new(48_000, 1).unwrap();
        for t in NODE_TYPES {
            let params = if *t == "resample" { serde_json::json!({ "sample_rate": 16000 }) } else { Value::Null };
            // aec needs a reference channel beside the near end.
            let input = if *t == "aec" { Format::new(48_000, 2).unwrap() } else { f48 };
            assert!(build(t, &params, input).is_ok(), "{t} does not build");
        }
        assert!(matches!(build("reverb", &Value::Null, f48), Err(NodeError::UnknownType(_))));
    }
}
