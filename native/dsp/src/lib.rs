//! RemoteMedia's audio engine: DSP nodes, the graph executor and the worker pool.
//!
//! Pure Rust, with no knowledge of Node.js; `remotemedia-binding` is the only bridge to JavaScript.
//! Audio inside the engine is planar `f32` in [-1, 1]; "frame" means one sample per channel.

pub mod buffer;
pub mod codec;
pub mod format;
pub mod graph;
pub mod memory;
pub mod node;
pub mod nodes;
pub mod opus;
pub mod plan;
pub mod pool;
pub mod replay;
pub mod session;
pub mod stats;
pub mod tally;
pub mod testing;
pub mod wav;
