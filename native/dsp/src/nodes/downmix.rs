//! `downmix`: average all channels to mono (docs/pipelines.md). Takes no params.

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioView;
use crate::format::Format;
use crate::node::{parse_params, Ctx, InPlaceNode, NodeCore, NodeError};

const TYPE: &str = "downmix";

/// Params of `downmix`: none, so only `{}` (or no params at all) is accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownmixParams {}

/// Replaces the channels by their mean, `(x0 + … + xn-1) / n`, so a signal identical in every
/// channel keeps its level.
pub struct Downmix {
    format: Format,
}

impl Downmix {
    /// Builds a downmix for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Downmix, NodeError> {
        let _: DownmixParams = parse_params(TYPE, params)?;
        Ok(Downmix { format: input })
    }
}

impl NodeCore for Downmix {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        Format { channels: 1, ..self.format }
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        Err(NodeError::params(TYPE, format!("no param '{name}'")))
    }

    fn reset(&mut self) {}
}

impl InPlaceNode for Downmix {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        let n = view.channels();
        if n > 1 {
            for c in 1..n {
                let (sum, other) = view.channel_pair_mut(0, c);
                for (s, x) in sum.iter_mut().zip(other) {
                    *s += x;
                }
            }
            let k = 1.0 / n as f32;
            for s in view.channel_mut(0) {
                *s *= k;
            }
        }
        view.set_channels(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_in_place, sine};
    use serde_json::json;

    #[test]
    fn averages_channels_to_mono() {
        let f = Format::new(48_000, 3).unwrap();
        let mut d = Downmix::new(&json!({}), f).unwrap();
        assert_eq!(d.output_format(), Format::new(48_000, 1).unwrap());
        let planes = vec![vec![0.3, 1.0, -1.0], vec![0.6, 1.0, 1.0], vec![0.0, 1.0, 0.0]];
        let out = run_in_place(&mut d, &planes, 3);
        assert_eq!(out.len(), 1);
        let want = [0.3, 1.0, 0.0];
        for (y, w) in out[0].iter().zip(want) {
            assert!((y - w).abs() < 1e-6, "{y} vs {w}");
        }
    }

    #[test]
    fn opposite_channels_cancel_and_equal_channels_keep_their_level() {
        let f = Format::new(48_000, 2).unwrap();
        let mut d = Downmix::new(&Value::Null, f).unwrap();
        let s = sine(1000.0, 48_000, 0.5, 480);
        let neg: Vec<f32> = s.iter().map(|x| -x).collect();
        assert!(run_in_place(&mut d, &[s.clone(), neg], 480)[0].iter().all(|&y| y == 0.0));
        assert_eq!(run_in_place(&mut d, &[s.clone(), s.clone()], 480)[0], s);
    }

    #[test]
    fn mono_passes_unchanged() {
        let mut d = Downmix::new(&json!({}), Format::new(16_000, 1).unwrap()).unwrap();
        let s = sine(440.0, 16_000, 0.9, 1000);
        assert_eq!(run_in_place(&mut d, std::slice::from_ref(&s), 64)[0], s);
    }

    #[test]
    fn output_does_not_depend_on_tiling() {
        let f = Format::new(48_000, 2).unwrap();
        let planes = vec![sine(1000.0, 48_000, 0.5, 4800), sine(300.0, 48_000, 0.25, 4800)];
        let whole = run_in_place(&mut Downmix::new(&json!({}), f).unwrap(), &planes, 4800);
        for tile in [1, 7, 480, 960, 1776] {
            assert_eq!(run_in_place(&mut Downmix::new(&json!({}), f).unwrap(), &planes, tile), whole, "tile {tile}");
        }
    }

    #[test]
    fn any_param_is_rejected() {
        let f = Format::new(48_000, 2).unwrap();
        assert!(matches!(Downmix::new(&json!({ "channels": 1 }), f), Err(NodeError::BadParams { .. })));
        assert!(Downmix::new(&json!({}), f).unwrap().set_param("x", &json!(1)).is_err());
    }
}
