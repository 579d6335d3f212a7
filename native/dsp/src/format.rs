//! Stream formats and their limits.

use serde::{Deserialize, Serialize};

/// Most channels any stream may carry (docs/pipelines.md, `upmix.channels` 1..8).
pub const MAX_CHANNELS: usize = 8;

/// Sample rate and channel count of one edge of the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Format {
    /// Sample frames per second.
    pub sample_rate: u32,
    /// Interleaved channels on the wire, planes inside the engine.
    pub channels: usize,
}

impl Format {
    /// A format, with both fields checked against the engine's limits.
    pub fn new(sample_rate: u32, channels: usize) -> Result<Format, String> {
        if !(1_000..=768_000).contains(&sample_rate) {
            return Err(format!("sample_rate {sample_rate} is outside 1000..=768000"));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("channels {channels} is outside 1..={MAX_CHANNELS}"));
        }
        Ok(Format { sample_rate, channels })
    }

    /// Frames in `ms` milliseconds, rounded to nearest.
    pub fn frames_in_ms(&self, ms: f64) -> usize {
        (ms * f64::from(self.sample_rate) / 1000.0).round() as usize
    }

    /// Milliseconds that `frames` frames last.
    pub fn ms_of(&self, frames: usize) -> f64 {
        frames as f64 * 1000.0 / f64::from(self.sample_rate)
    }
}
