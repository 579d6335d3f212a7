//! `gain`: multiply by a constant in dB (docs/pipelines.md). Live changes ramp over 10 ms.

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioView;
use crate::format::Format;
use crate::node::{check_range, param_number, db_to_linear, parse_params, Ctx, InPlaceNode, NodeCore, NodeError, Ramp};

const TYPE: &str = "gain";
/// Length of the ramp a live change takes.
const RAMP_MS: f64 = 10.0;

/// Params of `gain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GainParams {
    /// Gain in dB, -96..=48.
    pub db: f32,
}

impl Default for GainParams {
    fn default() -> Self {
        GainParams { db: 0.0 }
    }
}

/// Multiplies every sample by `10^(db/20)`.
pub struct Gain {
    format: Format,
    factor: Ramp,
}

fn factor_of(db: f32) -> Result<f32, NodeError> {
    Ok(db_to_linear(check_range(TYPE, "db", db, -96.0, 48.0)?))
}

impl Gain {
    /// Builds a gain for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Gain, NodeError> {
        let p: GainParams = parse_params(TYPE, params)?;
        let ramp_len = input.frames_in_ms(RAMP_MS) as u32;
        Ok(Gain { format: input, factor: Ramp::new(factor_of(p.db)?, ramp_len) })
    }
}

impl NodeCore for Gain {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        match name {
            "db" => {
                let db = param_number(TYPE, name, value)?;
                self.factor.set(factor_of(db as f32)?);
                Ok(())
            }
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {
        self.factor.jump(self.factor.target());
    }
}

impl InPlaceNode for Gain {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        if !self.factor.is_moving() {
            let k = self.factor.target();
            for c in 0..view.channels() {
                for x in view.channel_mut(c) {
                    *x *= k;
                }
            }
            return;
        }
        // During a ramp every channel must see the same factor per frame.
        let start = self.factor;
        for c in 0..view.channels() {
            let mut ramp = start;
            for x in view.channel_mut(c) {
                *x *= ramp.next_value();
            }
            self.factor = ramp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::AudioBuf;
    use serde_json::json;

    fn ctx_parts() -> (String, u32) {
        (String::new(), 0)
    }

    #[test]
    fn minus_six_db_halves_amplitude() {
        let f = Format::new(48_000, 2).unwrap();
        let mut g = Gain::new(&json!({ "db": -6.0206 }), f).unwrap();
        let mut b = AudioBuf::new(2, 4);
        b.set_shape(2, 4);
        b.channel_mut(0).fill(0.5);
        b.channel_mut(1).fill(-1.0);
        let (mut ev, mut n) = ctx_parts();
        let mut ctx = Ctx { events: &mut ev, event_count: &mut n, node_id: "g", frame: 0, position: 0, to_input_frames: 1.0, origin: 0 };
        g.process(&mut b.view_mut(0, 4), &mut ctx);
        for x in b.channel(0) {
            assert!((x - 0.25).abs() < 1e-4);
        }
        for x in b.channel(1) {
            assert!((x + 0.5).abs() < 1e-4);
        }
    }

    #[test]
    fn out_of_range_and_unknown_params_are_rejected() {
        let f = Format::new(48_000, 1).unwrap();
        assert!(matches!(Gain::new(&json!({ "db": 60 }), f), Err(NodeError::BadParams { .. })));
        assert!(matches!(Gain::new(&json!({ "gain": 1 }), f), Err(NodeError::BadParams { .. })));
        assert!(Gain::new(&Value::Null, f).is_ok());
    }

    #[test]
    fn live_changes_ramp_without_a_jump() {
        let f = Format::new(1_000, 1).unwrap(); // 10 ms ramp = 10 samples
        let mut g = Gain::new(&json!({}), f).unwrap();
        g.set_param("db", &json!(-96)).unwrap();
        let mut b = AudioBuf::new(1, 20);
        b.set_shape(1, 20);
        b.channel_mut(0).fill(1.0);
        let (mut ev, mut n) = ctx_parts();
        let mut ctx = Ctx { events: &mut ev, event_count: &mut n, node_id: "g", frame: 0, position: 0, to_input_frames: 1.0, origin: 0 };
        g.process(&mut b.view_mut(0, 20), &mut ctx);
        let out = b.channel(0);
        for w in out.windows(2) {
            assert!((w[0] - w[1]).abs() <= 0.1 + 1e-6, "step {} -> {}", w[0], w[1]);
        }
        assert!(out[19] < 1e-4);
    }
}
