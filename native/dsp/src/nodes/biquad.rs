//! `biquad`: second-order IIR filters from Robert Bristow-Johnson's "Cookbook formulae for audio
//! EQ biquad filter coefficients" (the Audio EQ Cookbook), as docs/pipelines.md names them.
//!
//! Each channel runs the transposed direct form II in f64, which keeps the round-off noise of
//! low-frequency, high-Q settings (poles hugging z = 1) far below the f32 signal:
//!
//! ```text
//!   y  = b0·x + s1
//!   s1 = b1·x − a1·y + s2
//!   s2 = b2·x − a2·y
//! ```
//! Live changes of `frequency`, `q` and `gain_db` glide over [`GLIDE_MS`]: the parameters move
//! along a ramp (frequency and Q on a log scale, gain in dB) and the coefficients are recomputed
//! for every sample of the glide, so the response never jumps and the output does not click.
//! Recomputing only every 32 samples was measured to be audibly worse: the coefficient steps
//! modulate the signal at `sample_rate / 32`, and a lowpass swept from 300 Hz to 5 kHz under a
//! 1 kHz tone rang at 4× the tone's steady second difference, against 1.2× when updated per
//! sample. A glide costs one coefficient design per sample for 20 ms, which is cheap.

use serde::Deserialize;
use serde_json::Value;
use std::f64::consts::PI;

use crate::buffer::AudioView;
use crate::format::Format;
use crate::node::{check_range, param_number, parse_params, Ctx, InPlaceNode, NodeCore, NodeError};

const TYPE: &str = "biquad";
/// How long a live parameter change takes to glide to its new value.
pub const GLIDE_MS: f64 = 20.0;

/// The cookbook's filter shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// 12 dB/octave low pass; `q` sets the resonance (0.7071 = Butterworth, -3 dB at `frequency`).
    Lowpass,
    /// 12 dB/octave high pass.
    Highpass,
    /// Band pass with 0 dB at `frequency`; `q` sets the bandwidth.
    Bandpass,
    /// Band stop with a zero at `frequency`.
    Notch,
    /// Bell: `gain_db` at `frequency`, 0 dB far from it.
    Peaking,
    /// `gain_db` below `frequency`, 0 dB above.
    Lowshelf,
    /// 0 dB below `frequency`, `gain_db` above.
    Highshelf,
}

/// Params of `biquad`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BiquadParams {
    /// Filter shape.
    pub kind: Kind,
    /// Corner / centre frequency in Hz, 10..=0.49·sample_rate.
    pub frequency: f64,
    /// Quality factor, 0.1..=100 (for shelves it plays the cookbook's Q, 0.7071 ≙ slope S = 1).
    pub q: f64,
    /// Gain in dB for peaking and shelves, -48..=48; ignored by the other kinds.
    pub gain_db: f64,
}

impl Default for BiquadParams {
    fn default() -> Self {
        BiquadParams { kind: Kind::Lowpass, frequency: 1000.0, q: std::f64::consts::FRAC_1_SQRT_2, gain_db: 0.0 }
    }
}

/// Filter coefficients normalised so that `a0 = 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefs {
    /// Feed-forward taps.
    pub b: [f64; 3],
    /// Feedback taps `a1`, `a2`.
    pub a: [f64; 2],
}

impl Coefs {
    /// The cookbook's coefficients for `kind` at `frequency` Hz with `q` and `gain_db`.
    pub fn design(kind: Kind, frequency: f64, q: f64, gain_db: f64, sample_rate: u32) -> Coefs {
        let w0 = 2.0 * PI * frequency / f64::from(sample_rate);
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * q);
        // Cookbook: A = 10^(dBgain/40), the square root of the linear gain, for peaking and shelves.
        let amp = 10f64.powf(gain_db / 40.0);
        let (b, a0, a) = match kind {
            Kind::Lowpass => {
                let k = 1.0 - cos;
                ([k / 2.0, k, k / 2.0], 1.0 + alpha, [-2.0 * cos, 1.0 - alpha])
            }
            Kind::Highpass => {
                let k = 1.0 + cos;
                ([k / 2.0, -k, k / 2.0], 1.0 + alpha, [-2.0 * cos, 1.0 - alpha])
            }
            // The constant 0 dB peak gain variant.
            Kind::Bandpass => ([alpha, 0.0, -alpha], 1.0 + alpha, [-2.0 * cos, 1.0 - alpha]),
            Kind::Notch => ([1.0, -2.0 * cos, 1.0], 1.0 + alpha, [-2.0 * cos, 1.0 - alpha]),
            Kind::Peaking => {
                ([1.0 + alpha * amp, -2.0 * cos, 1.0 - alpha * amp], 1.0 + alpha / amp, [-2.0 * cos, 1.0 - alpha / amp])
            }
            Kind::Lowshelf => {
                let r = 2.0 * amp.sqrt() * alpha;
                let (p, m) = (amp + 1.0, amp - 1.0);
                (
                    [amp * (p - m * cos + r), 2.0 * amp * (m - p * cos), amp * (p - m * cos - r)],
                    p + m * cos + r,
                    [-2.0 * (m + p * cos), p + m * cos - r],
                )
            }
            Kind::Highshelf => {
                let r = 2.0 * amp.sqrt() * alpha;
                let (p, m) = (amp + 1.0, amp - 1.0);
                (
                    [amp * (p + m * cos + r), -2.0 * amp * (m + p * cos), amp * (p + m * cos - r)],
                    p - m * cos + r,
                    [2.0 * (m - p * cos), p - m * cos - r],
                )
            }
        };
        Coefs { b: [b[0] / a0, b[1] / a0, b[2] / a0], a: [a[0] / a0, a[1] / a0] }
    }
}

/// The glided parameters: `[log2 frequency, log2 q, gain_db]`.
type Point = [f64; 3];

/// A live biquad over every channel of its input.
pub struct Biquad {
    format: Format,
    kind: Kind,
    coefs: Coefs,
    /// Per channel `[s1, s2]`.
    state: Vec<[f64; 2]>,
    current: Point,
    target: Point,
    step: Point,
    /// Samples left in the current glide.
    glide_left: u32,
    /// Samples a glide takes.
    glide_len: u32,
}

fn point_of(p: &BiquadParams, format: Format) -> Result<Point, NodeError> {
    let nyquist_limit = 0.49 * f64::from(format.sample_rate);
    let f = check_range(TYPE, "frequency", p.frequency, 10.0, nyquist_limit)?;
    let q = check_range(TYPE, "q", p.q, 0.1, 100.0)?;
    let g = check_range(TYPE, "gain_db", p.gain_db, -48.0, 48.0)?;
    Ok([f.log2(), q.log2(), g])
}

impl Biquad {
    /// Builds a biquad for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Biquad, NodeError> {
        let p: BiquadParams = parse_params(TYPE, params)?;
        let point = point_of(&p, input)?;
        let mut node = Biquad {
            format: input,
            kind: p.kind,
            coefs: Coefs::design(p.kind, p.frequency, p.q, p.gain_db, input.sample_rate),
            state: vec![[0.0; 2]; input.channels],
            current: point,
            target: point,
            step: [0.0; 3],
            glide_left: 0,
            glide_len: input.frames_in_ms(GLIDE_MS).max(1) as u32,
        };
        node.update_coefs();
        Ok(node)
    }

    /// The coefficients in use now.
    pub fn coefs(&self) -> Coefs {
        self.coefs
    }

    fn update_coefs(&mut self) {
        let [lf, lq, g] = self.current;
        self.coefs = Coefs::design(self.kind, lf.exp2(), lq.exp2(), g, self.format.sample_rate);
    }

    fn glide_to(&mut self, target: Point) {
        self.target = target;
        self.glide_left = self.glide_len;
        let n = f64::from(self.glide_len);
        for ((step, to), from) in self.step.iter_mut().zip(target).zip(self.current) {
            *step = (to - from) / n;
        }
    }

}

impl NodeCore for Biquad {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        let [lf, lq, g] = self.target;
        let mut p = BiquadParams { kind: self.kind, frequency: lf.exp2(), q: lq.exp2(), gain_db: g };
        match name {
            "frequency" => p.frequency = param_number(TYPE, name, value)?,
            "q" => p.q = param_number(TYPE, name, value)?,
            "gain_db" => p.gain_db = param_number(TYPE, name, value)?,
            // Coefficients of different shapes do not interpolate into sensible filters.
            "kind" => return Err(NodeError::params(TYPE, "kind cannot change while running")),
            other => return Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
        let target = point_of(&p, self.format)?;
        self.glide_to(target);
        Ok(())
    }

    fn reset(&mut self) {
        self.current = self.target;
        self.glide_left = 0;
        self.state.iter_mut().for_each(|s| *s = [0.0; 2]);
        self.update_coefs();
    }
}

impl InPlaceNode for Biquad {
    fn process(&mut self, view: &mut AudioView<'_>, _ctx: &mut Ctx<'_>) {
        let frames = view.frames();
        let mut start = 0;
        while start < frames {
            // While gliding, one frame at a time with fresh coefficients; otherwise the rest.
            let len = if self.glide_left > 0 {
                self.glide_left -= 1;
                if self.glide_left == 0 {
                    self.current = self.target;
                } else {
                    for (value, step) in self.current.iter_mut().zip(self.step) {
                        *value += step;
                    }
                }
                self.update_coefs();
                1
            } else {
                frames - start
            };
            let Coefs { b: [b0, b1, b2], a: [a1, a2] } = self.coefs;
            for (c, state) in self.state.iter_mut().enumerate().take(view.channels()) {
                let [mut s1, mut s2] = *state;
                for x in &mut view.channel_mut(c)[start..start + len] {
                    let x_in = f64::from(*x);
                    let y = b0 * x_in + s1;
                    s1 = b1 * x_in - a1 * y + s2;
                    s2 = b2 * x_in - a2 * y;
                    *x = y as f32;
                }
                // Flush states decaying into subnormals after the input goes silent; subnormal
                // arithmetic is slow on x86, and such states are far below any f32 output.
                if s1.abs() < 1e-30 && s2.abs() < 1e-30 {
                    (s1, s2) = (0.0, 0.0);
                }
                *state = [s1, s2];
            }
            start += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, run_in_place, sine, sine_amplitude};
    use serde_json::json;

    const RATE: u32 = 48_000;
    const KINDS: [&str; 7] = ["lowpass", "highpass", "bandpass", "notch", "peaking", "lowshelf", "highshelf"];

    /// |H(e^jw)| evaluated directly from the transfer function's coefficients.
    fn analytic_magnitude(c: Coefs, freq: f64, sample_rate: u32) -> f64 {
        let w = 2.0 * PI * freq / f64::from(sample_rate);
        let eval = |k: [f64; 3]| {
            let re = k[0] + k[1] * w.cos() + k[2] * (2.0 * w).cos();
            let im = -(k[1] * w.sin() + k[2] * (2.0 * w).sin());
            re.hypot(im)
        };
        eval(c.b) / eval([1.0, c.a[0], c.a[1]])
    }

    /// Gain in dB the node applies to a sine of `freq`, measured after the filter has settled.
    fn measured_gain_db(params: &Value, freq: f64) -> f64 {
        let mut f = Biquad::new(params, Format::new(RATE, 1).unwrap()).unwrap();
        let n = RATE as usize;
        let out = run_in_place(&mut f, &[sine(freq, RATE, 0.5, n)], 480);
        20.0 * (sine_amplitude(&out[0][n / 2..], freq, RATE) / 0.5).log10()
    }

    #[test]
    fn sine_response_matches_the_transfer_function() {
        let freqs = [50.0, 200.0, 500.0, 999.0, 2000.0, 5000.0, 12_000.0, 20_000.0];
        for kind in KINDS {
            let params = json!({ "kind": kind, "frequency": 1000, "q": 2.0, "gain_db": 9 });
            let node = Biquad::new(&params, Format::new(RATE, 1).unwrap()).unwrap();
            for freq in freqs {
                let want = analytic_magnitude(node.coefs(), freq, RATE);
                let got = 10f64.powf(measured_gain_db(&params, freq) / 20.0);
                assert!((got - want).abs() < 1e-5 + 1e-4 * want, "{kind} at {freq} Hz: {got} vs {want}");
            }
        }
    }

    #[test]
    fn cookbook_landmarks_hold() {
        let db = |kind: &str, f0: f64, q: f64, g: f64, freq: f64| {
            measured_gain_db(&json!({ "kind": kind, "frequency": f0, "q": q, "gain_db": g }), freq)
        };
        let butterworth = std::f64::consts::FRAC_1_SQRT_2;
        let near = |got: f64, want: f64, tol: f64, what: &str| assert!((got - want).abs() <= tol, "{what}: {got} dB");
        // Butterworth corners are -3.01 dB (|H| = Q = 1/√2 at w0 for both).
        near(db("lowpass", 1000.0, butterworth, 0.0, 1000.0), -3.0103, 0.01, "lowpass at f0");
        near(db("highpass", 1000.0, butterworth, 0.0, 1000.0), -3.0103, 0.01, "highpass at f0");
        near(db("lowpass", 1000.0, butterworth, 0.0, 50.0), 0.0, 0.01, "lowpass passband");
        near(db("highpass", 1000.0, butterworth, 0.0, 15_000.0), 0.0, 0.05, "highpass passband");
        // Two poles: 12 dB per octave far in the stop band, so ~-40 dB a decade away.
        assert!(db("lowpass", 1000.0, butterworth, 0.0, 10_000.0) < -39.0);
        assert!(db("highpass", 1000.0, butterworth, 0.0, 100.0) < -39.0);
        near(db("bandpass", 2000.0, 5.0, 0.0, 2000.0), 0.0, 0.01, "bandpass at f0");
        assert!(db("notch", 1000.0, 5.0, 0.0, 1000.0) < -60.0, "notch at f0");
        near(db("notch", 1000.0, 5.0, 0.0, 5000.0), 0.0, 0.1, "notch away from f0");
        near(db("peaking", 1000.0, 1.0, 9.0, 1000.0), 9.0, 0.01, "peaking at f0");
        near(db("peaking", 1000.0, 1.0, -15.0, 1000.0), -15.0, 0.01, "peaking cut at f0");
        near(db("peaking", 1000.0, 1.0, 9.0, 20_000.0), 0.0, 0.1, "peaking far away");
        near(db("lowshelf", 1000.0, butterworth, 12.0, 20.0), 12.0, 0.1, "lowshelf in the shelf");
        near(db("lowshelf", 1000.0, butterworth, 12.0, 20_000.0), 0.0, 0.1, "lowshelf above");
        near(db("highshelf", 1000.0, butterworth, -12.0, 20_000.0), -12.0, 0.1, "highshelf in the shelf");
        near(db("highshelf", 1000.0, butterworth, -12.0, 20.0), 0.0, 0.1, "highshelf below");
        // Shelves pass half their gain (in dB) at the corner.
        near(db("lowshelf", 1000.0, butterworth, 12.0, 1000.0), 6.0, 0.01, "lowshelf midpoint");
    }

    fn stereo_input() -> Vec<Vec<f32>> {
        let n = RATE as usize / 2;
        let s = sine(440.0, RATE, 0.4, n);
        let noise = noise(7, 0.3, n);
        vec![s.iter().zip(&noise).map(|(a, b)| a + b).collect(), noise]
    }

    #[test]
    fn output_does_not_depend_on_tiling_even_across_a_glide() {
        let input = stereo_input();
        let half = input[0].len() / 2;
        let first: Vec<Vec<f32>> = input.iter().map(|p| p[..half].to_vec()).collect();
        let second: Vec<Vec<f32>> = input.iter().map(|p| p[half..].to_vec()).collect();
        let format = Format::new(RATE, 2).unwrap();
        for kind in KINDS {
            let run = |tile: usize| {
                let mut f = Biquad::new(&json!({ "kind": kind, "gain_db": 6 }), format).unwrap();
                let mut out = run_in_place(&mut f, &first, tile);
                f.set_param("frequency", &json!(3000)).unwrap();
                f.set_param("q", &json!(3)).unwrap();
                let rest = run_in_place(&mut f, &second, tile);
                for (o, r) in out.iter_mut().zip(rest) {
                    o.extend(r);
                }
                out
            };
            let whole = run(half);
            for tile in [1, 7, 480, 960, 1776] {
                assert_eq!(run(tile), whole, "{kind}, tile {tile}");
            }
        }
    }

    #[test]
    fn live_changes_glide_without_clicks() {
        // A click is broadband: it shows as a spike in the second difference |y[n+1] - 2y[n] +
        // y[n-1]|, which for a steady sine is amplitude·w² (w = 2πf/fs). During a glide it must
        // stay near the larger of the steady values before and after. (Switching coefficients
        // at once peaks at 2.4×, 9.0× and 4.1× in the three sweeps below; the bell changes act
        // on the tone's own frequency and mainly check that gliding does not overshoot.)
        let second_difference =
            |y: &[f32]| y.windows(3).map(|w| f64::from((w[2] - 2.0 * w[1] + w[0]).abs())).fold(0.0, f64::max);
        let cases = [
            ("lowpass", "frequency", 300.0, 5000.0),
            ("lowpass", "frequency", 5000.0, 300.0),
            ("highpass", "frequency", 100.0, 3000.0),
            ("peaking", "gain_db", 0.0, 24.0),
            ("peaking", "q", 0.3, 20.0),
        ];
        for (kind, param, from, to) in cases {
            let params = json!({ "kind": kind, "q": 1, "gain_db": 12, param: from });
            let mut f = Biquad::new(&params, Format::new(RATE, 1).unwrap()).unwrap();
            let x = sine(1000.0, RATE, 0.05, 24_000);
            let mut y = run_in_place(&mut f, &[x[..4800].to_vec()], 480).remove(0);
            f.set_param(param, &json!(to)).unwrap();
            y.extend(run_in_place(&mut f, &[x[4800..].to_vec()], 480).remove(0));
            let steady = second_difference(&y[2400..4800]).max(second_difference(&y[20_000..]));
            let during = second_difference(&y[4790..7000]);
            assert!(during <= 1.5 * steady, "{kind} {param} {from} -> {to}: {during} vs steady {steady}");
        }
    }

    #[test]
    fn extreme_settings_stay_stable() {
        for rate in [8_000u32, 48_000, 192_000] {
            let top = 0.49 * f64::from(rate);
            for kind in KINDS {
                for (f0, q, g) in [(10.0, 100.0, 48.0), (10.0, 0.1, -48.0), (top, 100.0, -48.0), (top, 0.1, 48.0)] {
                    let params = json!({ "kind": kind, "frequency": f0, "q": q, "gain_db": g });
                    let node = Biquad::new(&params, Format::new(rate, 1).unwrap()).unwrap();
                    // A second-order denominator 1 + a1 z⁻¹ + a2 z⁻² has both poles inside the
                    // unit circle iff |a2| < 1 and |a1| < 1 + a2 (the stability triangle).
                    let [a1, a2] = node.coefs().a;
                    assert!(a2.abs() < 1.0 && a1.abs() < 1.0 + a2, "{kind} {params}: a = {a1}, {a2}");
                    let mut node = node;
                    let out = run_in_place(&mut node, &[noise(3, 1.0, rate as usize / 4)], 512);
                    assert!(out[0].iter().all(|y| y.is_finite() && y.abs() < 1e4), "{kind} {params}");
                }
            }
        }
    }

    #[test]
    fn bad_params_are_rejected() {
        let f = Format::new(RATE, 1).unwrap();
        for bad in [
            json!({ "frequency": 24_000 }),
            json!({ "frequency": 23_600 }),
            json!({ "frequency": 5 }),
            json!({ "q": 0.05 }),
            json!({ "q": 101 }),
            json!({ "gain_db": 49 }),
            json!({ "kind": "allpass" }),
            json!({ "cutoff": 100 }),
        ] {
            assert!(matches!(Biquad::new(&bad, f), Err(NodeError::BadParams { .. })), "{bad}");
        }
        assert!(Biquad::new(&json!({ "frequency": 23_520 }), f).is_ok());
        let mut node = Biquad::new(&Value::Null, f).unwrap();
        assert!(node.set_param("frequency", &json!(30_000)).is_err());
        assert!(node.set_param("kind", &json!("highpass")).is_err());
        assert!(node.set_param("frequency", &json!(2000)).is_ok());
    }
}
