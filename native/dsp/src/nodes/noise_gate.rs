//! `noise_gate`: mutes the signal while its level is below a threshold (docs/pipelines.md).
//!
//! ```text
//!  level (max |x| over channels) ─▶ peak follower ─▶ ≥ threshold? ─▶ openness ─▶ smoothstep ─▶ gain
//!                                   (instant rise,    open / closed   (linear: 0→1 over attack_ms,
//!                                    20 ms fall)                       1→0 over release_ms)
//! ```
//! The follower's short fall bridges the gaps between a waveform's peaks, so a steady tone above
//! the threshold keeps the gate open. The openness moves linearly, taking exactly `attack_ms` to
//! open fully and `release_ms` to close fully, and the gain is its smoothstep `o²(3 − 2o)`, whose
//! slope is zero at both ends: the gain has no corners, so opening and closing do not click, and
//! a closed gate outputs exact zeros. The gate starts closed.

use serde::Deserialize;
use serde_json::Value;

use super::dynamics::{apply_gains, coef, frame_peaks, CHUNK};
use crate::buffer::AudioView;
use crate::format::Format;
use crate::node::{check_range, param_number, parse_params, Ctx, InPlaceNode, NodeCore, NodeError};

const TYPE: &str = "noise_gate";
/// Fall time constant of the level follower.
pub const DETECTOR_RELEASE_MS: f64 = 20.0;

/// Params of `noise_gate`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseGateParams {
    /// Level that opens the gate, -120..=0 dBFS.
    pub threshold_dbfs: f64,
    /// Time to open fully, 0.1..=1000 ms.
    pub attack_ms: f64,
    /// Time to close fully, 1..=5000 ms.
    pub release_ms: f64,
}

impl Default for NoiseGateParams {
    fn default() -> Self {
        NoiseGateParams { threshold_dbfs: -50.0, attack_ms: 5.0, release_ms: 100.0 }
    }
}

impl NoiseGateParams {
    fn check(self) -> Result<Self, NodeError> {
        check_range(TYPE, "threshold_dbfs", self.threshold_dbfs, -120.0, 0.0)?;
        check_range(TYPE, "attack_ms", self.attack_ms, 0.1, 1000.0)?;
        check_range(TYPE, "release_ms", self.release_ms, 1.0, 5000.0)?;
        Ok(self)
    }
}

/// The gate; see the module docs.
pub struct NoiseGate {
    format: Format,
    params: NoiseGateParams,
    threshold: f64,
    open_step: f64,
    close_step: f64,
    detector_coef: f64,
    envelope: f64,
    openness: f64,
    peaks: [f32; CHUNK],
    gains: [f32; CHUNK],
}

impl NoiseGate {
    /// Builds a gate for `input`.
    pub fn new(params: &Value, input: Format) -> Result<NoiseGate, NodeError> {
        let p: NoiseGateParams = parse_params::<NoiseGateParams>(TYPE, params)?.check()?;
        let mut gate = NoiseGate {
            format: input,
            params: p,
            threshold: 0.0,
            open_step: 0.0,
            close_step: 0.0,
            detector_coef: coef(DETECTOR_RELEASE_MS, input.sample_rate),
            envelope: 0.0,
            openness: 0.0,
            peaks: [0.0; CHUNK],
            gains: [0.0; CHUNK],
        };
        gate.apply(p);
        Ok(gate)
    }

    fn apply(&mut self, p: NoiseGateParams) {
        let per_ms = f64::from(self.format.sample_rate) / 1000.0;
        self.params = p;
        self.threshold = 10f64.powf(p.threshold_dbfs / 20.0);
        self.open_step = 1.0 / (p.attack_ms * per_ms).max(1.0);
        self.close_step = 1.0 / (p.release_ms * per_ms).max(1.0);
    }
}

impl NodeCore for NoiseGate {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        // The openness keeps moving at a bounded rate, so any change is click-free.
        let mut p = self.params;
        match name {
            "threshold_dbfs" => p.threshold_dbfs = param_number(TYPE, name, value)?,
            "attack_ms" => p.attack_ms = param_number(TYPE, name, value)?,
            "release_ms" => p.release_ms = param_number(TYPE, name, value)?,
            other => return Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
        self.apply(p.check()?);
        Ok(())
    }

    fn reset(&mut self) {
        self.envelope = 0.0;
        self.openness = 0.0;
    }
}

impl InPlaceNode for NoiseGate {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        let frames = view.frames();
        let mut start = 0;
        while start < frames {
            let len = CHUNK.min(frames - start);
            frame_peaks(view, start, &mut self.peaks[..len]);
            for (g, &peak) in self.gains[..len].iter_mut().zip(&self.peaks[..len]) {
                self.envelope = f64::from(peak).max(self.envelope * self.detector_coef);
                self.openness = if self.envelope >= self.threshold {
                    (self.openness + self.open_step).min(1.0)
                } else {
                    (self.openness - self.close_step).max(0.0)
                };
                let o = self.openness;
                *g = (o * o * (3.0 - 2.0 * o)) as f32;
            }
            apply_gains(view, start, &self.gains[..len]);
            start += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, rms_dbfs, run_in_place, sine};
    use serde_json::json;

    const RATE: u32 = 48_000;

    fn mono() -> Format {
        Format::new(RATE, 1).unwrap()
    }

    #[test]
    fn a_loud_sine_passes_unchanged_after_the_attack() {
        let x = sine(440.0, RATE, 0.1, RATE as usize); // -20 dBFS, threshold -50
        let mut g = NoiseGate::new(&json!({}), mono()).unwrap();
        let y = run_in_place(&mut g, std::slice::from_ref(&x), 480).remove(0);
        let attack = 5 * RATE as usize / 1000;
        assert_eq!(&y[attack + 50..], &x[attack + 50..]);
    }

    #[test]
    fn quiet_noise_is_silenced_after_the_release() {
        let n = RATE as usize;
        let mut x = sine(1000.0, RATE, 0.1, n / 2);
        let hiss = noise(3, 10f64.powf(-70.0 / 20.0), n);
        x.extend(&hiss);
        let mut g = NoiseGate::new(&json!({ "threshold_dbfs": -50, "release_ms": 100 }), mono()).unwrap();
        let y = run_in_place(&mut g, &[x], 480).remove(0);
        // Follower fall from -20 to -50 dBFS (~70 ms) plus the 100 ms release.
        let after = n / 2 + 200 * RATE as usize / 1000;
        let attenuation = rms_dbfs(&y[after..]) - rms_dbfs(&hiss[after - n / 2..]);
        assert!(attenuation < -60.0, "{attenuation} dB");
        // Hiss alone never opens the gate.
        let mut g = NoiseGate::new(&json!({}), mono()).unwrap();
        assert!(run_in_place(&mut g, &[hiss], 480)[0].iter().all(|&y| y == 0.0));
    }

    #[test]
    fn opening_and_closing_are_smooth() {
        // On DC the output is the gain curve itself; smoothstep's slope is at most 1.5 / ramp.
        let mut x = vec![0.5f32; 4800];
        x.extend(vec![0.0f32; 9600]);
        x.extend(vec![0.5f32; 4800]);
        let mut g = NoiseGate::new(&json!({ "attack_ms": 2, "release_ms": 50 }), mono()).unwrap();
        let y = run_in_place(&mut g, std::slice::from_ref(&x), 480).remove(0);
        let max_step = 0.5 * 1.5 / (2.0 * f64::from(RATE) / 1000.0);
        let mut y_gain = y.clone();
        // While x is 0 the output is 0 anyway; look at the gain on the DC parts.
        for (yg, x) in y_gain.iter_mut().zip(&x) {
            if *x == 0.0 {
                *yg = f32::NAN;
            }
        }
        for w in y_gain.windows(2).filter(|w| !w[0].is_nan() && !w[1].is_nan()) {
            assert!(f64::from((w[1] - w[0]).abs()) <= max_step * 1.001, "{} -> {}", w[0], w[1]);
        }
        let first = 0.5 * (1.0 / 96.0f64).powi(2) * (3.0 - 2.0 / 96.0);
        assert!((f64::from(y[0]) - first).abs() < 1e-9, "starts closed, opens over 96 samples: {}", y[0]);
        assert_eq!(y[96], 0.5);
    }

    #[test]
    fn channels_share_one_gain() {
        let stereo = Format::new(RATE, 2).unwrap();
        let mut left = sine(200.0, RATE, 0.2, 14_400);
        left[4800..].fill(0.0);
        let right: Vec<f32> = noise(6, 1e-4, 14_400);
        let y = run_in_place(
            &mut NoiseGate::new(&json!({ "release_ms": 20 }), stereo).unwrap(),
            &[left, right.clone()],
            480,
        );
        // The quiet right channel rides on the left channel's level: open, then closed.
        assert_eq!(&y[1][1000..4800], &right[1000..4800]);
        assert!(y[1][12_000..].iter().all(|&y| y == 0.0));
    }

    #[test]
    fn output_does_not_depend_on_tiling() {
        let n = RATE as usize;
        let bursts: Vec<f32> = sine(300.0, RATE, 0.3, n)
            .iter()
            .enumerate()
            .map(|(i, x)| if (i / 6000) % 2 == 0 { *x } else { x * 1e-3 })
            .collect();
        let planes = vec![bursts, noise(12, 1e-3, n)];
        let stereo = Format::new(RATE, 2).unwrap();
        let run = |tile| {
            run_in_place(
                &mut NoiseGate::new(&json!({ "threshold_dbfs": -30, "release_ms": 30 }), stereo).unwrap(),
                &planes,
                tile,
            )
        };
        let whole = run(n);
        for tile in [1, 7, 480, 960, 1776] {
            assert_eq!(run(tile), whole, "tile {tile}");
        }
    }

    #[test]
    fn params_are_validated() {
        for bad in [
            json!({ "threshold_dbfs": 1 }),
            json!({ "threshold_dbfs": -121 }),
            json!({ "attack_ms": 0.05 }),
            json!({ "release_ms": 0.5 }),
            json!({ "release_ms": 5001 }),
            json!({ "hold_ms": 1 }),
        ] {
            assert!(matches!(NoiseGate::new(&bad, mono()), Err(NodeError::BadParams { .. })), "{bad}");
        }
        let mut g = NoiseGate::new(&Value::Null, mono()).unwrap();
        assert!(g.set_param("threshold_dbfs", &json!(-40)).is_ok());
        assert!(g.set_param("attack_ms", &json!(0)).is_err());
        assert!(g.set_param("ratio", &json!(2)).is_err());
    }
}
