//! `limiter`: a peak limiter without lookahead (docs/pipelines.md), so it adds no latency.
//!
//! The gain computer attacks instantly: for every frame it needs `g ≤ ceiling / max|x|` (over all
//! channels, so the stereo image holds), and takes exactly that when the running gain is higher.
//! Otherwise the gain recovers towards unity exponentially, `1 − g` shrinking by `e^(−1)` every
//! `release_ms`. The output therefore never exceeds the ceiling, and input below the ceiling
//! passes unchanged once the gain is back at 1. The ceiling itself glides over 10 ms when
//! changed live.

use serde::Deserialize;
use serde_json::Value;

use super::dynamics::{apply_gains, coef, frame_peaks, CHUNK};
use crate::buffer::AudioView;
use crate::format::Format;
use crate::node::{check_range, param_number, db_to_linear, parse_params, Ctx, InPlaceNode, NodeCore, NodeError, Ramp};

const TYPE: &str = "limiter";
/// How long a live ceiling change glides.
const RAMP_MS: f64 = 10.0;

/// Params of `limiter`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimiterParams {
    /// Highest output peak, -60..=0 dBFS.
    pub ceiling_dbfs: f64,
    /// Time constant of the gain's recovery, 1..=5000 ms.
    pub release_ms: f64,
}

impl Default for LimiterParams {
    fn default() -> Self {
        LimiterParams { ceiling_dbfs: -1.0, release_ms: 50.0 }
    }
}

/// The limiter; see the module docs.
pub struct Limiter {
    format: Format,
    release_ms: f64,
    release_coef: f64,
    ceiling: Ramp,
    gain: f64,
    peaks: [f32; CHUNK],
    gains: [f32; CHUNK],
}

fn ceiling_of(db: f64) -> Result<f32, NodeError> {
    Ok(db_to_linear(check_range(TYPE, "ceiling_dbfs", db, -60.0, 0.0)? as f32))
}

fn release_of(ms: f64) -> Result<f64, NodeError> {
    check_range(TYPE, "release_ms", ms, 1.0, 5000.0)
}

impl Limiter {
    /// Builds a limiter for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Limiter, NodeError> {
        let p: LimiterParams = parse_params(TYPE, params)?;
        let release_ms = release_of(p.release_ms)?;
        Ok(Limiter {
            format: input,
            release_ms,
            release_coef: coef(release_ms, input.sample_rate),
            ceiling: Ramp::new(ceiling_of(p.ceiling_dbfs)?, input.frames_in_ms(RAMP_MS) as u32),
            gain: 1.0,
            peaks: [0.0; CHUNK],
            gains: [0.0; CHUNK],
        })
    }

    /// The release time constant in ms.
    pub fn release_ms(&self) -> f64 {
        self.release_ms
    }
}

impl NodeCore for Limiter {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        match name {
            "ceiling_dbfs" => self.ceiling.set(ceiling_of(param_number(TYPE, name, value)?)?),
            "release_ms" => {
                self.release_ms = release_of(param_number(TYPE, name, value)?)?;
                self.release_coef = coef(self.release_ms, self.format.sample_rate);
            }
            other => return Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.ceiling.jump(self.ceiling.target());
        self.gain = 1.0;
    }
}

impl InPlaceNode for Limiter {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        let frames = view.frames();
        let mut start = 0;
        while start < frames {
            let len = CHUNK.min(frames - start);
            frame_peaks(view, start, &mut self.peaks[..len]);
            for (g_out, &peak) in self.gains[..len].iter_mut().zip(&self.peaks[..len]) {
                let ceiling = self.ceiling.next_value();
                let released = 1.0 - (1.0 - self.gain) * self.release_coef;
                self.gain = if peak > ceiling { released.min(f64::from(ceiling / peak)) } else { released };
                // ceiling / peak is rounded in f32 so that x · g, also rounded in f32, stays
                // within one rounding of the ceiling.
                *g_out = if peak > ceiling { (self.gain as f32).min(ceiling / peak) } else { self.gain as f32 };
            }
            apply_gains(view, start, &self.gains[..len]);
            start += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, run_in_place, sine};
    use serde_json::json;

    const RATE: u32 = 48_000;

    #[test]
    fn output_never_exceeds_the_ceiling() {
        let n = RATE as usize;
        let stereo = Format::new(RATE, 2).unwrap();
        for ceiling_dbfs in [-1.0, -6.0, -40.0, 0.0] {
            let ceiling = 10f64.powf(ceiling_dbfs / 20.0);
            let plus_12 = sine(1000.0, RATE, 10f64.powf(12.0 / 20.0), n);
            let loud_noise = noise(4, 8.0, n);
            let mut l = Limiter::new(&json!({ "ceiling_dbfs": ceiling_dbfs }), stereo).unwrap();
            let y = run_in_place(&mut l, &[plus_12, loud_noise], 480);
            for ch in &y {
                let peak = ch.iter().fold(0f32, |m, x| m.max(x.abs()));
                assert!(f64::from(peak) <= ceiling + 1e-6, "{ceiling_dbfs} dBFS: peak {peak}");
            }
            // And it limits rather than mutes: the loudest channel's peaks sit at the ceiling.
            let peak = y.iter().flatten().fold(0f32, |m, x| m.max(x.abs()));
            assert!(f64::from(peak) > ceiling * 0.99, "{peak}");
        }
    }

    #[test]
    fn input_below_the_ceiling_passes_bit_exact() {
        let stereo = Format::new(RATE, 2).unwrap();
        let planes = vec![sine(440.0, RATE, 0.8, 48_000), noise(1, 0.89, 48_000)];
        let mut l = Limiter::new(&json!({}), stereo).unwrap();
        assert_eq!(run_in_place(&mut l, &planes, 480), planes);
    }

    #[test]
    fn gain_recovers_with_the_release_time_constant() {
        // A DC burst at 4.0 pins the gain at ceiling / 4; the quiet DC after it shows the gain
        // directly as y / x, which must follow 1 − (1 − g0)·e^(−t / release).
        let ceiling = 10f64.powf(-1.0 / 20.0);
        let release_ms = 50.0;
        let tau = release_ms * f64::from(RATE) / 1000.0;
        let mut x = vec![4.0f32; 4800];
        x.extend(vec![0.1f32; 48_000]);
        let mut l = Limiter::new(&json!({ "release_ms": release_ms }), Format::new(RATE, 1).unwrap()).unwrap();
        let y = run_in_place(&mut l, &[x], 480).remove(0);
        let g0 = ceiling / 4.0;
        assert!((f64::from(y[4799]) - ceiling).abs() < 1e-6);
        for k in [1usize, 100, tau as usize, 2 * tau as usize, 5 * tau as usize] {
            let got = f64::from(y[4799 + k]) / 0.1;
            let want = 1.0 - (1.0 - g0) * (-(k as f64) / tau).exp();
            assert!((got - want).abs() < 1e-5, "after {k} samples: {got} vs {want}");
        }
        assert_eq!(y[y.len() - 1], 0.1, "gain fully back at unity");
    }

    #[test]
    fn channels_share_one_gain() {
        let stereo = Format::new(RATE, 2).unwrap();
        let loud = sine(100.0, RATE, 2.0, 9600);
        let quiet: Vec<f32> = loud.iter().map(|x| x * 0.125).collect();
        let y = run_in_place(&mut Limiter::new(&json!({}), stereo).unwrap(), &[loud, quiet], 480);
        assert!(y[0].iter().zip(&y[1]).all(|(a, b)| a * 0.125 == *b));
    }

    #[test]
    fn output_does_not_depend_on_tiling() {
        let n = RATE as usize;
        let swell: Vec<f32> =
            sine(150.0, RATE, 1.0, n).iter().enumerate().map(|(i, x)| x * (i as f32 / n as f32) * 3.0).collect();
        let planes = [swell, noise(8, 0.5, n)];
        let stereo = Format::new(RATE, 2).unwrap();
        let run = |tile: usize| {
            let mut l = Limiter::new(&json!({ "ceiling_dbfs": -3, "release_ms": 20 }), stereo).unwrap();
            let first: Vec<Vec<f32>> = planes.iter().map(|p| p[..n / 2].to_vec()).collect();
            let second: Vec<Vec<f32>> = planes.iter().map(|p| p[n / 2..].to_vec()).collect();
            let mut out = run_in_place(&mut l, &first, tile);
            l.set_param("ceiling_dbfs", &json!(-9)).unwrap();
            for (o, r) in out.iter_mut().zip(run_in_place(&mut l, &second, tile)) {
                o.extend(r);
            }
            out
        };
        let whole = run(n / 2);
        for tile in [1, 7, 480, 960, 1776] {
            assert_eq!(run(tile), whole, "tile {tile}");
        }
    }

    #[test]
    fn params_are_validated() {
        let f = Format::new(RATE, 1).unwrap();
        for bad in [
            json!({ "ceiling_dbfs": 1 }),
            json!({ "ceiling_dbfs": -61 }),
            json!({ "release_ms": 0.5 }),
            json!({ "attack_ms": 1 }),
        ] {
            assert!(matches!(Limiter::new(&bad, f), Err(NodeError::BadParams { .. })), "{bad}");
        }
        let mut l = Limiter::new(&Value::Null, f).unwrap();
        assert!(l.set_param("release_ms", &json!(6000)).is_err());
        assert!(l.set_param("release_ms", &json!(200)).is_ok());
        assert_eq!(l.release_ms(), 200.0);
        assert!(l.set_param("lookahead_ms", &json!(1)).is_err());
    }
}
