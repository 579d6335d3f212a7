//! `upmix`: copy a mono stream to N channels (docs/pipelines.md, `channels` 1..8).

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioView;
use crate::format::{Format, MAX_CHANNELS};
use crate::node::{check_range, parse_params, Ctx, InPlaceNode, NodeCore, NodeError};

const TYPE: &str = "upmix";

/// Params of `upmix`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpmixParams {
    /// Output channels, 1..=8.
    pub channels: usize,
}

impl Default for UpmixParams {
    fn default() -> Self {
        UpmixParams { channels: 2 }
    }
}

/// Writes the single input channel into every output channel.
pub struct Upmix {
    format: Format,
}

impl Upmix {
    /// Builds an upmix for `input`, which must be mono (spreading several channels would need a
    /// channel map the spec does not define).
    pub fn new(params: &Value, input: Format) -> Result<Upmix, NodeError> {
        let p: UpmixParams = parse_params(TYPE, params)?;
        let channels = check_range(TYPE, "channels", p.channels, 1, MAX_CHANNELS)?;
        if input.channels != 1 {
            return Err(NodeError::format(TYPE, format!("input must be mono, got {} channels", input.channels)));
        }
        Ok(Upmix { format: Format { channels, ..input } })
    }
}

impl NodeCore for Upmix {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        match name {
            // The channel count is part of the negotiated formats downstream.
            "channels" => Err(NodeError::params(TYPE, "channels cannot change while running")),
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {}
}

impl InPlaceNode for Upmix {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        view.set_channels(self.format.channels);
        for c in 1..self.format.channels {
            let (dst, src) = view.channel_pair_mut(c, 0);
            dst.copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_in_place, sine};
    use serde_json::json;

    #[test]
    fn copies_mono_to_every_channel() {
        let mono = Format::new(48_000, 1).unwrap();
        let s = sine(1000.0, 48_000, 0.5, 960);
        for n in 1..=MAX_CHANNELS {
            let mut u = Upmix::new(&json!({ "channels": n }), mono).unwrap();
            assert_eq!(u.output_format(), Format::new(48_000, n).unwrap());
            assert_eq!(u.output_channels(), n);
            let out = run_in_place(&mut u, std::slice::from_ref(&s), 960);
            assert_eq!(out, vec![s.clone(); n]);
        }
    }

    #[test]
    fn defaults_to_stereo() {
        let u = Upmix::new(&Value::Null, Format::new(16_000, 1).unwrap()).unwrap();
        assert_eq!(u.output_format().channels, 2);
    }

    #[test]
    fn output_does_not_depend_on_tiling() {
        let mono = Format::new(48_000, 1).unwrap();
        let s = vec![sine(440.0, 48_000, 0.7, 4800)];
        let whole = run_in_place(&mut Upmix::new(&json!({ "channels": 3 }), mono).unwrap(), &s, 4800);
        for tile in [1, 7, 480, 960, 1776] {
            let mut u = Upmix::new(&json!({ "channels": 3 }), mono).unwrap();
            assert_eq!(run_in_place(&mut u, &s, tile), whole, "tile {tile}");
        }
    }

    #[test]
    fn rejects_bad_params_and_non_mono_input() {
        let mono = Format::new(48_000, 1).unwrap();
        for bad in [json!({ "channels": 0 }), json!({ "channels": 9 }), json!({ "channels": "2" }), json!({ "x": 1 })] {
            assert!(matches!(Upmix::new(&bad, mono), Err(NodeError::BadParams { .. })), "{bad}");
        }
        let stereo = Format::new(48_000, 2).unwrap();
        assert!(matches!(Upmix::new(&json!({}), stereo), Err(NodeError::BadFormat { .. })));
        assert!(Upmix::new(&json!({}), mono).unwrap().set_param("channels", &json!(4)).is_err());
    }
}
