//! `vad`: voice activity detection (docs/pipelines.md) with the WebRTC VAD algorithm (GMM over six
//! sub-band log energies), via its pure-Rust port `earshot` 0.1. Audio passes through untouched;
//! the node emits `speech_start` / `speech_end` events.
//!
//! ```text
//!  input ─▶ channel mean ─▶ i16 ─▶ 30 ms window ─┬─▶ WebRTC VAD (mode = aggressiveness) ─┐
//!           (windows cut by absolute position)   └─▶ level ≥ noise floor + 9 dB ─────────┴─▶ voiced
//!  voiced ─▶ state machine: 2 voiced windows in a row start speech,
//!            hangover_ms of unvoiced windows ends it ─▶ speech_start / speech_end
//! ```
//!
//! The level gate is ours, not WebRTC's: WebRTC VAD adapts its noise model only on windows it
//! already calls noise, and caps the model's means, so steady loud noise (the band-limited pink noise in
//! `test/fixtures/audio/noise-48k-mono.wav`, about -30 dBFS) reads as speech at every aggressiveness.
//! A minimum-statistics noise floor (the quietest 30 ms window of the last 1.5 s, as in
//! R. Martin, "Noise power spectral density estimation based on optimal smoothing and minimum
//! statistics", 2001, on the broadband level) catches that: speech rises and falls by syllables,
//! steady noise stays near its own minimum (in the recording, no two windows in a row rise 3 dB
//! above it). The cost: speech whose level never rises 9 dB above the quietest window of the
//! last 1.5 s (SNR under ~9 dB) is missed, and a noise burst right after silence counts as
//! speech until the floor has caught up (at most 1.5 s).
//!
//! Windows are cut from the stream by absolute position, so events do not depend on how the
//! stream is split into blocks. Events are dated where speech really started and ended, which
//! is often in an earlier block than the one that decided it ([`Ctx::emit_at`]).

use earshot::{VoiceActivityDetector, VoiceActivityProfile};
use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::codec::f32_to_s16;
use crate::format::Format;
use crate::node::{check_range, param_uint, parse_params, AnalysisNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "vad";
/// Rates the WebRTC VAD analyses natively.
pub const RATES: [u32; 4] = [8_000, 16_000, 32_000, 48_000];
/// Window length. earshot 0.1 resamples 16/32/48 kHz input into a fixed 30 ms (240-sample) 8 kHz
/// frame: shorter frames are silently zero-padded and longer ones panic, so 30 ms is the only
/// length that is analysed as given at every rate.
const WINDOW_MS: u32 = 30;
/// Samples in the longest window (30 ms at 48 kHz).
const MAX_WINDOW: usize = 1_440;
/// Consecutive voiced windows needed to start speech (60 ms): a single voiced window is usually a
/// click or a door, not a word, and WebRTC VAD flags those readily at low aggressiveness.
pub const MIN_VOICED_WINDOWS: u32 = 2;
/// How far above the noise floor a window must be to count as voiced. The noise recording starts
/// passing as speech with a gate of 2 dB; 9 dB leaves margin for rougher noise, and on the speech
/// recordings covers all but one more loud window than a 3 dB gate does.
pub const SNR_GATE_DB: f32 = 9.0;
/// Windows the noise floor looks back over (50 × 30 ms = 1.5 s): longer than a word, so the
/// floor sits in the pauses of speech rather than on it.
const FLOOR_WINDOWS: usize = 50;
/// Level of a digitally silent window.
const SILENCE_DB: f32 = -100.0;

/// Params of `vad`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VadParams {
    /// 0..=3: WebRTC's modes QUALITY, LBR (low bit rate), AGGRESSIVE, VERY_AGGRESSIVE. Higher
    /// values flag less noise as speech but also clip more weak speech.
    pub aggressiveness: u8,
    /// Unvoiced time, 0..=5000 ms, after which active speech ends.
    pub hangover_ms: u32,
}

impl Default for VadParams {
    fn default() -> Self {
        VadParams { aggressiveness: 2, hangover_ms: 300 }
    }
}

fn profile_of(aggressiveness: usize) -> VoiceActivityProfile {
    match aggressiveness {
        0 => VoiceActivityProfile::QUALITY,
        1 => VoiceActivityProfile::LBR,
        2 => VoiceActivityProfile::AGGRESSIVE,
        _ => VoiceActivityProfile::VERY_AGGRESSIVE,
    }
}

fn check_aggressiveness(value: u64) -> Result<usize, NodeError> {
    Ok(check_range(TYPE, "aggressiveness", value, 0, 3)? as usize)
}

fn check_hangover(value: u64) -> Result<u32, NodeError> {
    Ok(check_range(TYPE, "hangover_ms", value, 0, 5_000)? as u32)
}

/// Detects speech and reports where it starts and ends.
pub struct Vad {
    format: Format,
    /// One detector per aggressiveness, built up front so a live change allocates nothing: earshot
    /// 0.1 cannot change a detector's profile, and building one allocates.
    detectors: [VoiceActivityDetector; 4],
    active: usize,
    hangover_frames: u64,
    /// Samples per 30 ms window at the input rate.
    window_len: usize,
    window: [i16; MAX_WINDOW],
    window_fill: usize,
    /// Levels (dBFS) of the last windows, a ring; `levels_seen` of them are valid.
    levels: [f32; FLOOR_WINDOWS],
    levels_seen: usize,
    /// Frames of input analysed so far (the absolute position of the next sample).
    position: u64,
    /// Consecutive voiced windows while not speaking, and where the first of them began.
    voiced_run: u32,
    run_start: u64,
    speaking: bool,
    speech_start: u64,
    /// End of the last voiced window while speaking.
    last_voiced_end: u64,
    /// Unvoiced frames since `last_voiced_end`.
    unvoiced_frames: u64,
}

impl Vad {
    /// Builds a VAD for `input`, whose rate must be one of [`RATES`].
    pub fn new(params: &Value, input: Format) -> Result<Vad, NodeError> {
        let p: VadParams = parse_params(TYPE, params)?;
        let active = check_aggressiveness(u64::from(p.aggressiveness))?;
        let hangover_ms = check_hangover(u64::from(p.hangover_ms))?;
        if !RATES.contains(&input.sample_rate) {
            return Err(NodeError::format(
                TYPE,
                format!("sample_rate {} is not supported; use 8000, 16000, 32000 or 48000", input.sample_rate),
            ));
        }
        let window_len = (input.sample_rate * WINDOW_MS / 1000) as usize;
        Ok(Vad {
            format: input,
            detectors: [0, 1, 2, 3].map(|a| VoiceActivityDetector::new(profile_of(a))),
            active,
            hangover_frames: Self::frames_of_ms(input, hangover_ms),
            window_len,
            window: [0; MAX_WINDOW],
            window_fill: 0,
            levels: [SILENCE_DB; FLOOR_WINDOWS],
            levels_seen: 0,
            position: 0,
            voiced_run: 0,
            run_start: 0,
            speaking: false,
            speech_start: 0,
            last_voiced_end: 0,
            unvoiced_frames: 0,
        })
    }

    fn frames_of_ms(format: Format, ms: u32) -> u64 {
        u64::from(ms) * u64::from(format.sample_rate) / 1000
    }

    /// Runs the detector on the full window ending at `self.position` and steps the state machine.
    fn window_done(&mut self, ctx: &mut Ctx<'_>) {
        let frame = &self.window[..self.window_len];
        let vad = &mut self.detectors[self.active];
        // Exactly 30 ms at a supported rate, so earshot cannot reject it; count an error as silence.
        let voiced = match self.format.sample_rate {
            8_000 => vad.predict_8khz(frame),
            16_000 => vad.predict_16khz(frame),
            32_000 => vad.predict_32khz(frame),
            _ => vad.predict_48khz(frame),
        }
        .unwrap_or(false);
        let voiced = self.above_noise_floor() && voiced;
        let end = self.position;
        let start = end - self.window_len as u64;
        if voiced {
            if self.speaking {
                self.last_voiced_end = end;
                self.unvoiced_frames = 0;
                return;
            }
            if self.voiced_run == 0 {
                self.run_start = start;
            }
            self.voiced_run += 1;
            if self.voiced_run >= MIN_VOICED_WINDOWS {
                self.speaking = true;
                self.speech_start = self.run_start;
                self.last_voiced_end = end;
                self.unvoiced_frames = 0;
                self.voiced_run = 0;
                ctx.emit_at("speech_start", self.speech_start, format_args!("{{}}"));
            }
        } else if self.speaking {
            self.unvoiced_frames += self.window_len as u64;
            if self.unvoiced_frames >= self.hangover_frames {
                self.end_speech(ctx);
            }
        } else {
            self.voiced_run = 0;
        }
    }

    /// Records the current window's level and tells whether it stands [`SNR_GATE_DB`] above the
    /// quietest window of the last [`FLOOR_WINDOWS`] (this one included).
    fn above_noise_floor(&mut self) -> bool {
        let frame = &self.window[..self.window_len];
        // Exact in integers (and as fast as the loop can go); 1,440 squares of at most 2^30 fit an i64.
        let energy: i64 = frame.iter().map(|&x| i64::from(i32::from(x) * i32::from(x))).sum();
        let power = energy as f64 / (frame.len() as f64 * 32_768.0 * 32_768.0);
        let level = if power > 0.0 { (10.0 * power.log10()).max(f64::from(SILENCE_DB)) as f32 } else { SILENCE_DB };
        self.levels[self.levels_seen % FLOOR_WINDOWS] = level;
        self.levels_seen += 1;
        let floor = self.levels[..self.levels_seen.min(FLOOR_WINDOWS)].iter().copied().fold(f32::MAX, f32::min);
        level >= floor + SNR_GATE_DB
    }

    /// Emits `speech_end` where the last voiced window ended.
    fn end_speech(&mut self, ctx: &mut Ctx<'_>) {
        let duration_ms = (self.last_voiced_end - self.speech_start) * 1000 / u64::from(self.format.sample_rate);
        ctx.emit_at("speech_end", self.last_voiced_end, format_args!("{{\"duration_ms\":{duration_ms}}}"));
        self.speaking = false;
        self.unvoiced_frames = 0;
    }
}

/// Writes the channel mean of `input`'s frames `start..start + out.len()` into `out` as i16
/// samples. Slice by slice rather than sample by sample, so the loop vectorises.
fn channel_mean_i16(input: &AudioBuf, start: usize, out: &mut [i16]) {
    let channels = input.channels();
    let inverse = 1.0 / channels as f32;
    let to_i16 = |sum: f32| f32_to_s16(sum * inverse);
    let range = start..start + out.len();
    match channels {
        1 => out.iter_mut().zip(&input.channel(0)[range]).for_each(|(o, &a)| *o = to_i16(a)),
        2 => out
            .iter_mut()
            .zip(input.channel(0)[range.clone()].iter().zip(&input.channel(1)[range]))
            .for_each(|(o, (&a, &b))| *o = to_i16(a + b)),
        _ => out
            .iter_mut()
            .enumerate()
            .for_each(|(k, o)| *o = to_i16((0..channels).map(|c| input.channel(c)[start + k]).sum())),
    }
}

impl NodeCore for Vad {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        match name {
            "aggressiveness" => {
                let a = check_aggressiveness(param_uint(TYPE, name, value)?)?;
                if a != self.active {
                    // The new detector starts from WebRTC's initial noise/speech models and adapts
                    // within a few windows; the speech state machine carries on unchanged.
                    self.detectors[a].reset();
                    self.active = a;
                }
                Ok(())
            }
            "hangover_ms" => {
                self.hangover_frames = Self::frames_of_ms(self.format, check_hangover(param_uint(TYPE, name, value)?)?);
                Ok(())
            }
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {
        self.detectors[self.active].reset();
        self.window_fill = 0;
        self.levels_seen = 0;
        self.position = 0;
        self.voiced_run = 0;
        self.speaking = false;
        self.unvoiced_frames = 0;
    }
}

impl AnalysisNode for Vad {
    fn analyze(&mut self, input: &AudioBuf, ctx: &mut Ctx<'_>) {
        let frames = input.frames();
        let mut done = 0;
        while done < frames {
            let n = (self.window_len - self.window_fill).min(frames - done);
            channel_mean_i16(input, done, &mut self.window[self.window_fill..self.window_fill + n]);
            self.window_fill += n;
            self.position += n as u64;
            done += n;
            if self.window_fill == self.window_len {
                self.window_fill = 0;
                self.window_done(ctx);
            }
        }
    }

    /// A trailing partial window is not analysed (earshot would zero-pad it); speech still active
    /// ends where its last voiced window did.
    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        if self.speaking {
            self.end_speech(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{analyze_in_blocks, read_fixture_audio, sine, timeline};
    use serde_json::json;

    fn vad(params: Value, rate: u32, channels: usize) -> Vad {
        Vad::new(&params, Format::new(rate, channels).unwrap()).unwrap()
    }

    /// `(start, end)` sample pairs of the speech segments, checking that events alternate.
    fn segments(events: &[Value]) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut open = None;
        for e in events {
            let sample = e["sample"].as_u64().unwrap();
            match e["name"].as_str().unwrap() {
                "speech_start" => {
                    assert!(open.is_none(), "two starts in a row: {events:?}");
                    assert_eq!(e["data"], json!({}));
                    open = Some(sample);
                }
                "speech_end" => {
                    let start = open.take().expect("end without start");
                    assert!(sample > start);
                    out.push((start, sample));
                }
                other => panic!("unexpected event {other}"),
            }
        }
        assert!(open.is_none(), "finish must close the last segment");
        out
    }

    /// 30 ms windows whose RMS lies within 30 dB of the loudest window: a level-based reference
    /// for "where the voice is" in a clean recording.
    fn loud_windows(x: &[f32], rate: u32) -> Vec<(u64, u64)> {
        let w = (rate * 30 / 1000) as usize;
        let rms: Vec<f64> = x.chunks_exact(w).map(crate::testing::rms_dbfs).collect();
        let top = rms.iter().cloned().fold(f64::MIN, f64::max);
        rms.iter()
            .enumerate()
            .filter(|(_, &r)| r > top - 30.0)
            .map(|(i, _)| ((i * w) as u64, ((i + 1) * w) as u64))
            .collect()
    }

    #[test]
    fn speech_16k_is_found_and_covers_the_voiced_part() {
        let (planes, rate) = read_fixture_audio("speech-16k-mono.wav");
        let events = analyze_in_blocks(&mut vad(json!({}), rate, 1), &planes, 0);
        let segs = segments(&events);
        assert!(!segs.is_empty(), "no speech found");
        let loud = loud_windows(&planes[0], rate);
        let covered = loud.iter().filter(|(a, b)| segs.iter().any(|(s, e)| s <= a && b <= e)).count();
        let share = covered as f64 / loud.len() as f64;
        println!("segments {segs:?}; {covered}/{} loud windows covered", loud.len());
        assert!(share >= 0.9, "only {share:.2} of the voiced windows lie in speech");
        for (e, (s, end)) in events.iter().filter(|e| e["name"] == "speech_end").zip(&segs) {
            assert_eq!(e["data"]["duration_ms"].as_u64().unwrap(), (end - s) * 1000 / u64::from(rate));
        }
    }

    #[test]
    fn speech_48k_is_found() {
        let (planes, rate) = read_fixture_audio("speech-48k-mono.wav");
        let segs = segments(&analyze_in_blocks(&mut vad(json!({}), rate, 1), &planes, 0));
        println!("segments {segs:?} of {} frames", planes[0].len());
        assert!(!segs.is_empty());
        let loud = loud_windows(&planes[0], rate);
        let covered = loud.iter().filter(|(a, b)| segs.iter().any(|(s, e)| s <= a && b <= e)).count();
        println!("{covered}/{} loud windows covered", loud.len());
        assert!(covered as f64 >= 0.8 * loud.len() as f64);
    }

    #[test]
    fn noise_48k_is_not_speech() {
        let (planes, rate) = read_fixture_audio("noise-48k-mono.wav");
        for a in 0..=3 {
            let events = analyze_in_blocks(&mut vad(json!({ "aggressiveness": a }), rate, 1), &planes, 0);
            assert!(events.is_empty(), "aggressiveness {a}: noise flagged as speech: {events:?}");
        }
    }

    #[test]
    fn webrtc_alone_takes_steady_noise_for_speech() {
        // Why the level gate exists: without it most noise windows are "voiced" at every mode.
        let (planes, rate) = read_fixture_audio("noise-48k-mono.wav");
        for a in 0..4 {
            let mut d = VoiceActivityDetector::new(profile_of(a));
            let windows: Vec<Vec<i16>> =
                planes[0].chunks_exact(1_440).map(|c| c.iter().map(|x| (x * 32_768.0) as i16).collect()).collect();
            let voiced = windows.iter().filter(|w| d.predict_48khz(w).unwrap()).count();
            assert!(voiced * 10 > windows.len() * 8, "aggressiveness {a}: {voiced}/{}", windows.len());
        }
        assert_eq!(rate, 48_000);
    }

    /// The windows the detector sees hold, sample by sample, the rounded channel mean a plain
    /// per-sample loop computes, at any channel count and block offset, ties and overloads included.
    #[test]
    fn windows_hold_the_rounded_channel_mean() {
        let reference = |frame: &[f32]| {
            let mean = frame.iter().sum::<f32>() * (1.0 / frame.len() as f32);
            (mean * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
        };
        for channels in 1..=3 {
            let frames = 1_000;
            let planes: Vec<Vec<f32>> = (0..channels)
                // Grid values plus half a step: ties at one and two channels, beyond full scale too.
                .map(|c| (0..frames).map(|i| (((i * 7_919 + c * 104_729) % 90_001) as f32 - 45_000.0 + 0.5) / 32_768.0).collect())
                .collect();
            let mut buf = AudioBuf::new(channels, 300);
            let mut node = vad(json!({}), 16_000, channels);
            let mut log = crate::testing::EventLog::default();
            let mut seen = 0;
            for block in [7, 300, 173] {
                buf.set_shape(channels, block);
                for (c, p) in planes.iter().enumerate() {
                    buf.channel_mut(c).copy_from_slice(&p[seen..seen + block]);
                }
                node.analyze(&buf, &mut log.ctx("n", 0, seen as u64));
                seen += block;
                let window_start = seen - node.window_fill;
                for k in 0..node.window_fill {
                    let frame: Vec<f32> = planes.iter().map(|p| p[window_start + k]).collect();
                    assert_eq!(node.window[k], reference(&frame), "channels {channels}, frame {}", window_start + k);
                }
            }
        }
    }

    #[test]
    fn silence_gives_nothing() {
        for rate in RATES {
            let silence = vec![vec![0.0f32; rate as usize * 2]];
            assert!(analyze_in_blocks(&mut vad(json!({}), rate, 1), &silence, 0).is_empty());
        }
    }

    #[test]
    fn events_do_not_depend_on_block_size() {
        for name in ["speech-16k-mono.wav", "speech-48k-mono.wav"] {
            let (planes, rate) = read_fixture_audio(name);
            let whole = timeline(&analyze_in_blocks(&mut vad(json!({}), rate, 1), &planes, 0));
            assert!(!whole.is_empty());
            for ms in [10, 20, 37] {
                let block = (rate * ms / 1000) as usize;
                let cut = timeline(&analyze_in_blocks(&mut vad(json!({}), rate, 1), &planes, block));
                assert_eq!(cut, whole, "{name} in {ms} ms blocks");
            }
        }
    }

    #[test]
    fn channels_are_averaged() {
        // Speech on the left, its negative on the right: the mono average is silence.
        let (planes, rate) = read_fixture_audio("speech-16k-mono.wav");
        let neg: Vec<f32> = planes[0].iter().map(|x| -x).collect();
        let stereo = vec![planes[0].clone(), neg];
        assert!(analyze_in_blocks(&mut vad(json!({}), rate, 2), &stereo, 0).is_empty());
        let same = vec![planes[0].clone(), planes[0].clone()];
        let mono = timeline(&analyze_in_blocks(&mut vad(json!({}), rate, 1), &planes, 0));
        assert_eq!(timeline(&analyze_in_blocks(&mut vad(json!({}), rate, 2), &same, 0)), mono);
    }

    #[test]
    fn hangover_sets_how_long_a_pause_ends_speech() {
        // Speech, 600 ms of silence, speech again: a 300 ms hangover splits it, 1000 ms does not.
        let (planes, rate) = read_fixture_audio("speech-16k-mono.wav");
        let gap = vec![0.0f32; rate as usize * 6 / 10];
        let joined = vec![[planes[0].as_slice(), &gap, &planes[0]].concat()];
        let short = segments(&analyze_in_blocks(&mut vad(json!({ "hangover_ms": 300 }), rate, 1), &joined, 0));
        let long = segments(&analyze_in_blocks(&mut vad(json!({ "hangover_ms": 1000 }), rate, 1), &joined, 0));
        assert!(short.len() >= 2, "{short:?}");
        assert!(long.len() < short.len(), "{long:?} vs {short:?}");
    }

    #[test]
    fn live_changes_apply_without_rebuilding() {
        let (planes, rate) = read_fixture_audio("speech-16k-mono.wav");
        let mut v = vad(json!({}), rate, 1);
        v.set_param("aggressiveness", &json!(3)).unwrap();
        v.set_param("hangover_ms", &json!(0)).unwrap();
        let events = analyze_in_blocks(&mut v, &planes, 160);
        assert!(!segments(&events).is_empty());
        let rebuilt = analyze_in_blocks(&mut vad(json!({ "aggressiveness": 3, "hangover_ms": 0 }), rate, 1), &planes, 0);
        assert_eq!(timeline(&events), timeline(&rebuilt));
        assert!(v.set_param("aggressiveness", &json!(4)).is_err());
        assert!(v.set_param("hangover_ms", &json!(-1)).is_err());
        assert!(v.set_param("threshold", &json!(1)).is_err());
    }

    #[test]
    fn bad_params_and_rates_are_rejected() {
        let f = Format::new(16_000, 1).unwrap();
        assert!(matches!(Vad::new(&json!({ "aggressiveness": 4 }), f), Err(NodeError::BadParams { .. })));
        assert!(matches!(Vad::new(&json!({ "hangover_ms": 5001 }), f), Err(NodeError::BadParams { .. })));
        assert!(matches!(Vad::new(&json!({ "mode": 1 }), f), Err(NodeError::BadParams { .. })));
        let err = Vad::new(&Value::Null, Format::new(44_100, 1).unwrap()).err().unwrap();
        assert!(matches!(&err, NodeError::BadFormat { message, .. } if message.contains("48000")), "{err}");
        assert!(Vad::new(&Value::Null, f).is_ok());
    }

    #[test]
    fn a_tone_burst_is_dated_at_its_edges() {
        // WebRTC VAD takes a loud 300 Hz tone (inside its speech bands) for voice. Placed on 30 ms
        // window edges (8 kHz: 240 samples), the segment must match it exactly with no hangover.
        let rate = 8_000;
        let mut x = vec![0.0f32; rate as usize];
        x[2_400..7_200].copy_from_slice(&sine(300.0, rate, 0.5, 4_800));
        let events = analyze_in_blocks(&mut vad(json!({ "aggressiveness": 0, "hangover_ms": 0 }), rate, 1), &[x], 77);
        assert_eq!(segments(&events), vec![(2_400, 7_200)]);
        assert_eq!(events[1]["data"], json!({ "duration_ms": 600 }));
    }
}
