//! `dtmf`: DTMF digit detection with the Goertzel algorithm (docs/pipelines.md), following the checks of
//! ITU-T Q.24 / Q.23. Audio passes through untouched; each digit is one `digit` event.
//!
//! ```text
//!              1209  1336  1477  1633 Hz
//!     697 Hz    1     2     3     A
//!     770 Hz    4     5     6     B          mono ─▶ blocks of 105 samples @ 8 kHz (13.1 ms,
//!     852 Hz    7     8     9     C                  scaled with the rate) ─▶ 8 Goertzel powers
//!     941 Hz    *     0     #     D                  ─▶ checks ─▶ hit or no hit per block
//!                                                    ─▶ 2 equal blocks in a row change the state
//! ```
//!
//! Checks on each block, all of which must pass for a hit:
//! - level: both tones at least [`MIN_TONE_DBFS`];
//! - one row and one column tone each at least [`RELATIVE_PEAK_DB`] above the others of its group;
//! - twist (Q.24): the column tone at most 8 dB below the row tone (normal twist) and at most
//!   4 dB above it (reverse twist);
//! - the two tones carry at least [`MIN_TONE_SHARE`] of the block's energy (talk-off: speech and
//!   noise spread their energy over many frequencies).
//!
//! A state (a digit, or none) is taken on when two consecutive blocks agree. So every tone of
//! Q.24's shortest valid 40 ms holds two full blocks whatever its alignment and is caught, tones
//! under 26 ms never are, a one-block dropout inside a tone does not split it, and a 40 ms pause
//! (two full silent blocks) separates repeats of the same digit. The event is dated at the start
//! of the first block of the run: within one block (13 ms) of the true onset, either side.

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::Format;
use crate::node::{parse_params, AnalysisNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "dtmf";
/// Lowest input rate: the highest DTMF tone (1633 Hz) needs some room below Nyquist, and 8 kHz is
/// the telephone rate DTMF was designed for.
pub const MIN_RATE: u32 = 8_000;
/// Block length at 8 kHz. 105 samples put the tones of each group about one Goertzel bin
/// (76 Hz) apart, which is what keeps the rows from leaking into one another.
const BLOCK_AT_8K: u32 = 105;
/// Row (low-group) frequencies, Hz.
pub const ROWS_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high-group) frequencies, Hz.
pub const COLS_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keypad, `[row][column]`.
const KEYS: [[&str; 4]; 4] = [["1", "2", "3", "A"], ["4", "5", "6", "B"], ["7", "8", "9", "C"], ["*", "0", "#", "D"]];
/// Quietest tone accepted (peak amplitude, dBFS). Q.24 leaves the exact figure to each
/// administration (around -25 to -30 dBm0); -36 dBFS keeps a margin below that.
pub const MIN_TONE_DBFS: f64 = -36.0;
/// How far the strongest tone of a group must stand above the others of that group.
pub const RELATIVE_PEAK_DB: f64 = 8.0;
/// Normal twist limit: column tone at most this far below the row tone (Q.24).
pub const NORMAL_TWIST_DB: f64 = 8.0;
/// Reverse twist limit: column tone at most this far above the row tone (Q.24).
pub const REVERSE_TWIST_DB: f64 = 4.0;
/// Share of the block's energy the two tones must carry.
pub const MIN_TONE_SHARE: f64 = 0.7;

/// `dtmf` takes no params.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtmfParams {}

fn db_to_power(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Detects DTMF digits.
pub struct Dtmf {
    format: Format,
    block_len: usize,
    /// Goertzel coefficients 2·cos(2πf/fs): rows then columns.
    coeffs: [f64; 8],
    /// Goertzel states s[n-1], s[n-2] per frequency, for the block in progress.
    s1: [f64; 8],
    s2: [f64; 8],
    energy: f64,
    block_fill: usize,
    /// Frames seen (absolute position of the next sample).
    position: u64,
    /// The previous block's result, and where the run of equal results began.
    last_hit: Option<u8>,
    run_start: u64,
    /// The state both last blocks agreed on: the digit being held, or none.
    current: Option<u8>,
}

impl Dtmf {
    /// Builds a detector for `input` (at least 8 kHz).
    pub fn new(params: &Value, input: Format) -> Result<Dtmf, NodeError> {
        let _: DtmfParams = parse_params(TYPE, params)?;
        if input.sample_rate < MIN_RATE {
            return Err(NodeError::format(TYPE, format!("sample_rate {} is below {MIN_RATE}", input.sample_rate)));
        }
        let rate = f64::from(input.sample_rate);
        let block_len = (f64::from(BLOCK_AT_8K) * rate / f64::from(MIN_RATE)).round() as usize;
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS_HZ.iter().chain(&COLS_HZ)) {
            *c = 2.0 * (2.0 * std::f64::consts::PI * f / rate).cos();
        }
        Ok(Dtmf {
            format: input,
            block_len,
            coeffs,
            s1: [0.0; 8],
            s2: [0.0; 8],
            energy: 0.0,
            block_fill: 0,
            position: 0,
            last_hit: None,
            run_start: 0,
            current: None,
        })
    }

    /// The key (row·4 + column) this block holds, if it passes every check.
    fn classify(&self) -> Option<u8> {
        let mut power = [0.0; 8];
        for (k, p) in power.iter_mut().enumerate() {
            let (s1, s2) = (self.s1[k], self.s2[k]);
            *p = (s1 * s1 + s2 * s2 - self.coeffs[k] * s1 * s2).max(0.0);
        }
        let (rows, cols) = power.split_at(4);
        let best = |g: &[f64]| (0..4).fold(0, |b, i| if g[i] > g[b] { i } else { b });
        let (r, c) = (best(rows), best(cols));
        let n = self.block_len as f64;
        // A sine of amplitude A gives a Goertzel power of (A·n/2)².
        let min_power = db_to_power(MIN_TONE_DBFS) * (n / 2.0) * (n / 2.0);
        if rows[r] < min_power || cols[c] < min_power {
            return None;
        }
        let margin = db_to_power(RELATIVE_PEAK_DB);
        let dominates = |g: &[f64], b: usize| (0..4).all(|i| i == b || g[b] >= margin * g[i]);
        if !dominates(rows, r) || !dominates(cols, c) {
            return None;
        }
        if rows[r] > db_to_power(NORMAL_TWIST_DB) * cols[c] || cols[c] > db_to_power(REVERSE_TWIST_DB) * rows[r] {
            return None;
        }
        // That sine's own energy Σx² is n·A²/2 = 2·power/n.
        let tone_energy = 2.0 * (rows[r] + cols[c]) / n;
        if tone_energy < MIN_TONE_SHARE * self.energy {
            return None;
        }
        Some((r * 4 + c) as u8)
    }

    fn block_done(&mut self, ctx: &mut Ctx<'_>) {
        let hit = self.classify();
        let start = self.position - self.block_len as u64;
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        if hit != self.last_hit {
            self.last_hit = hit;
            self.run_start = start;
            return;
        }
        if hit != self.current {
            self.current = hit;
            if let Some(key) = hit {
                let digit = KEYS[usize::from(key / 4)][usize::from(key % 4)];
                ctx.emit_at("digit", self.run_start, format_args!("{{\"digit\":\"{digit}\"}}"));
            }
        }
    }
}

impl NodeCore for Dtmf {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, _value: &Value) -> Result<(), NodeError> {
        Err(NodeError::params(TYPE, format!("no param '{name}'")))
    }

    fn reset(&mut self) {
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.block_fill = 0;
        self.position = 0;
        self.last_hit = None;
        self.current = None;
    }
}

impl AnalysisNode for Dtmf {
    fn analyze(&mut self, input: &AudioBuf, ctx: &mut Ctx<'_>) {
        let channels = input.channels();
        let inv = 1.0 / channels as f64;
        for i in 0..input.frames() {
            let x = (0..channels).map(|c| f64::from(input.channel(c)[i])).sum::<f64>() * inv;
            self.energy += x * x;
            for k in 0..8 {
                let s0 = x + self.coeffs[k] * self.s1[k] - self.s2[k];
                self.s2[k] = self.s1[k];
                self.s1[k] = s0;
            }
            self.block_fill += 1;
            self.position += 1;
            if self.block_fill == self.block_len {
                self.block_fill = 0;
                self.block_done(ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{analyze_in_blocks, read_fixture_audio, timeline};
    use serde_json::json;
    use std::f64::consts::PI;

    fn dtmf(rate: u32, channels: usize) -> Dtmf {
        Dtmf::new(&Value::Null, Format::new(rate, channels).unwrap()).unwrap()
    }

    fn digits(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                assert_eq!(e["name"], "digit");
                e["data"]["digit"].as_str().unwrap().to_string()
            })
            .collect()
    }

    /// A DTMF tone: the row and column sines at the given peak levels (dBFS), with some phase.
    fn tone(key: &str, rate: u32, ms: f64, row_dbfs: f64, col_dbfs: f64) -> Vec<f32> {
        let (r, c) = (0..16).map(|i| (i / 4, i % 4)).find(|&(r, c)| KEYS[r][c] == key).unwrap();
        let (ar, ac) = (10f64.powf(row_dbfs / 20.0), 10f64.powf(col_dbfs / 20.0));
        let frames = (ms * f64::from(rate) / 1000.0).round() as usize;
        (0..frames)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (ar * (2.0 * PI * ROWS_HZ[r] * t + 0.3).sin() + ac * (2.0 * PI * COLS_HZ[c] * t + 1.1).sin()) as f32
            })
            .collect()
    }

    fn gap(rate: u32, ms: f64) -> Vec<f32> {
        vec![0.0; (ms * f64::from(rate) / 1000.0).round() as usize]
    }

    /// First sample of each burst: where |x| first exceeds `level` after at least `quiet` samples below it.
    fn onsets(x: &[f32], level: f32, quiet: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut below = quiet;
        for (i, &v) in x.iter().enumerate() {
            if v.abs() > level {
                if below >= quiet {
                    out.push(i as u64);
                }
                below = 0;
            } else {
                below += 1;
            }
        }
        out
    }

    #[test]
    fn the_recording_decodes_as_1_5_9_at_the_tone_onsets() {
        let (planes, rate) = read_fixture_audio("dtmf-8k-159.wav");
        let events = analyze_in_blocks(&mut dtmf(rate, 1), &planes, 0);
        assert_eq!(digits(&events), ["1", "5", "9"]);
        let starts = onsets(&planes[0], 0.01, 400);
        assert_eq!(starts.len(), 3, "{starts:?}");
        for (e, s) in events.iter().zip(starts) {
            let at = e["sample"].as_u64().unwrap();
            // Dated at the start of the first block found to hold the tone: within one block of it.
            assert!(at.abs_diff(s) < 105, "event at {at}, tone at {s}");
        }
    }

    #[test]
    fn all_sixteen_keys_decode_at_8k_and_48k() {
        let keys = ["1", "2", "3", "A", "4", "5", "6", "B", "7", "8", "9", "C", "*", "0", "#", "D"];
        for rate in [8_000, 16_000, 44_100, 48_000] {
            let mut x = gap(rate, 30.0);
            for k in keys {
                x.extend(tone(k, rate, 60.0, -10.0, -8.0));
                x.extend(gap(rate, 50.0));
            }
            let got = digits(&analyze_in_blocks(&mut dtmf(rate, 1), &[x], 0));
            assert_eq!(got, keys, "at {rate} Hz");
        }
    }

    #[test]
    fn twist_limits_follow_q24() {
        let rate = 8_000;
        let detects = |row_db: f64, col_db: f64| {
            let x = [gap(rate, 20.0), tone("5", rate, 100.0, row_db, col_db), gap(rate, 20.0)].concat();
            !analyze_in_blocks(&mut dtmf(rate, 1), &[x], 0).is_empty()
        };
        assert!(detects(-10.0, -17.0), "7 dB normal twist");
        assert!(!detects(-10.0, -19.0), "9 dB normal twist");
        assert!(detects(-13.0, -10.0), "3 dB reverse twist");
        assert!(!detects(-15.0, -10.0), "5 dB reverse twist");
        assert!(detects(-30.0, -30.0), "weak but valid");
        assert!(!detects(-45.0, -45.0), "below the level threshold");
    }

    #[test]
    fn short_tones_are_ignored_and_pauses_separate_repeats() {
        for rate in [8_000, 48_000] {
            let run = |parts: &[Vec<f32>]| digits(&analyze_in_blocks(&mut dtmf(rate, 1), &[parts.concat()], 0));
            assert!(run(&[gap(rate, 20.0), tone("7", rate, 20.0, -10.0, -10.0), gap(rate, 50.0)]).is_empty());
            // Q.24's shortest valid tone and pause: 40 ms.
            let t = || tone("7", rate, 40.0, -10.0, -10.0);
            assert_eq!(run(&[gap(rate, 13.0), t(), gap(rate, 40.0), t(), gap(rate, 40.0)]), ["7", "7"]);
            // A 5 ms dropout inside a tone does not make two digits of it.
            let long = tone("7", rate, 120.0, -10.0, -10.0);
            let mut broken = long.clone();
            let (a, b) = (rate as usize * 60 / 1000, rate as usize * 65 / 1000);
            broken[a..b].fill(0.0);
            assert_eq!(run(&[gap(rate, 10.0), broken, gap(rate, 50.0)]), ["7"]);
        }
    }

    #[test]
    fn speech_and_noise_give_no_digits() {
        for name in ["speech-16k-mono.wav", "speech-48k-mono.wav", "noise-48k-mono.wav", "tones-48k-stereo.wav"] {
            let (planes, rate) = read_fixture_audio(name);
            let events = analyze_in_blocks(&mut dtmf(rate, planes.len()), &planes, 0);
            assert!(events.is_empty(), "{name}: {events:?}");
        }
    }

    #[test]
    fn events_do_not_depend_on_block_size() {
        let (planes, rate) = read_fixture_audio("dtmf-8k-159.wav");
        let whole = timeline(&analyze_in_blocks(&mut dtmf(rate, 1), &planes, 0));
        assert_eq!(whole.len(), 3);
        for block in [80, 160, 296, 1, 7] {
            assert_eq!(timeline(&analyze_in_blocks(&mut dtmf(rate, 1), &planes, block)), whole, "blocks of {block}");
        }
    }

    #[test]
    fn channels_are_averaged() {
        let (planes, rate) = read_fixture_audio("dtmf-8k-159.wav");
        let stereo = vec![planes[0].clone(), planes[0].clone()];
        let mono = timeline(&analyze_in_blocks(&mut dtmf(rate, 1), &planes, 0));
        assert_eq!(timeline(&analyze_in_blocks(&mut dtmf(rate, 2), &stereo, 0)), mono);
    }

    #[test]
    fn low_rates_and_params_are_rejected() {
        let f = Format::new(8_000, 1).unwrap();
        assert!(Dtmf::new(&json!({}), f).is_ok());
        assert!(matches!(Dtmf::new(&json!({ "threshold": 1 }), f), Err(NodeError::BadParams { .. })));
        assert!(matches!(Dtmf::new(&Value::Null, Format::new(4_000, 1).unwrap()), Err(NodeError::BadFormat { .. })));
        assert!(dtmf(8_000, 1).set_param("anything", &json!(1)).is_err());
    }
}
