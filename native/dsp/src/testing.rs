//! Signal generators, measurements and recordings used by the engine's tests and benchmarks.

use std::f64::consts::PI;
use std::path::PathBuf;

use crate::buffer::AudioBuf;
use crate::codec;
use crate::format::MAX_CHANNELS;
use crate::node::{AnalysisNode, BlockNode, Ctx, InPlaceNode};
use crate::wav;

/// A sine of `freq` Hz at `amplitude`, `frames` long.
pub fn sine(freq: f64, sample_rate: u32, amplitude: f64, frames: usize) -> Vec<f32> {
    (0..frames).map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(sample_rate)).sin()) as f32).collect()
}

/// THD+N in dB of `signal` (which should hold a sine of `freq`): the power left after removing the
/// best-fitting sine (least squares at `freq`, with DC), relative to the sine's power.
pub fn thd_n_db(signal: &[f32], freq: f64, sample_rate: u32) -> f64 {
    let w = 2.0 * PI * freq / f64::from(sample_rate);
    // Normal equations for x ≈ a·sin + b·cos + c.
    let (mut ss, mut cc, mut sc, mut s1, mut c1, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut xs, mut xc, mut x1) = (0.0, 0.0, 0.0);
    for (i, &x) in signal.iter().enumerate() {
        let (s, c, x) = ((w * i as f64).sin(), (w * i as f64).cos(), f64::from(x));
        ss += s * s;
        cc += c * c;
        sc += s * c;
        s1 += s;
        c1 += c;
        n += 1.0;
        xs += x * s;
        xc += x * c;
        x1 += x;
    }
    let m = [[ss, sc, s1], [sc, cc, c1], [s1, c1, n]];
    let [a, b, c] = solve3(m, [xs, xc, x1]);
    let (mut fit, mut resid) = (0.0, 0.0);
    for (i, &x) in signal.iter().enumerate() {
        let y = a * (w * i as f64).sin() + b * (w * i as f64).cos();
        fit += y * y;
        resid += (f64::from(x) - y - c).powi(2);
    }
    10.0 * (resid / fit).log10()
}

fn solve3(m: [[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let mut mk = m;
        for r in 0..3 {
            mk[r][k] = v[r];
        }
        *o = det(mk) / d;
    }
    out
}

/// RMS of a signal in dBFS.
pub fn rms_dbfs(signal: &[f32]) -> f64 {
    let p: f64 = signal.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / signal.len().max(1) as f64;
    10.0 * p.max(1e-20).log10()
}

/// Path of a test recording in the repository's `test/fixtures/audio/` (made by
/// `scripts/make-fixtures.mjs`; its README says how each was made).
pub fn fixture_audio(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/audio").join(name)
}

/// Reads a test recording as planar f32 plus its sample rate.
pub fn read_fixture_audio(name: &str) -> (Vec<Vec<f32>>, u32) {
    let path = fixture_audio(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let w = wav::parse(&bytes).expect("valid wav");
    let frames = codec::frames_in(w.data.len(), w.encoding, w.format.channels).unwrap();
    let mut planes = vec![vec![0.0f32; frames]; w.format.channels];
    let mut refs: Vec<&mut [f32]> = planes.iter_mut().map(|p| p.as_mut_slice()).collect();
    codec::decode(w.data, w.encoding, &mut refs).unwrap();
    (planes, w.format.sample_rate)
}

/// A planar buffer holding `planes` (all the same length).
pub fn buf_of(planes: &[Vec<f32>]) -> AudioBuf {
    let frames = planes.first().map_or(0, Vec::len);
    let mut b = AudioBuf::new(planes.len(), frames);
    b.set_shape(planes.len(), frames);
    for (c, p) in planes.iter().enumerate() {
        b.channel_mut(c).copy_from_slice(p);
    }
    b
}

/// Owns what a [`Ctx`] borrows, for tests that drive one node by hand.
#[derive(Default)]
pub struct EventLog {
    /// Event messages, newline-separated.
    pub text: String,
    /// How many.
    pub count: u32,
}

impl EventLog {
    /// A context for node `node_id` at message `frame`, input position `position`.
    pub fn ctx<'a>(&'a mut self, node_id: &'a str, frame: u64, position: u64) -> Ctx<'a> {
        Ctx { events: &mut self.text, event_count: &mut self.count, node_id, frame, position, to_input_frames: 1.0, origin: 0 }
    }

    /// The events as parsed JSON values.
    pub fn parsed(&self) -> Vec<serde_json::Value> {
        self.text.lines().map(|l| serde_json::from_str(l).expect("event is JSON")).collect()
    }
}

/// Streams `planes` through a [`BlockNode`] in blocks of `chunk_frames` (0 = one block), then
/// flushes it, and returns everything it wrote, concatenated per channel. Output buffers are
/// sized by `max_output_frames`, as the executor sizes them.
pub fn stream_block(node: &mut dyn BlockNode, planes: &[Vec<f32>], chunk_frames: usize) -> Vec<Vec<f32>> {
    let frames = planes.first().map_or(0, Vec::len);
    let chunk = if chunk_frames == 0 { frames.max(1) } else { chunk_frames };
    let mut out_planes = vec![Vec::new(); node.output_format().channels];
    let mut log = EventLog::default();
    let mut input = AudioBuf::new(planes.len(), chunk);
    let mut output = AudioBuf::new(out_planes.len(), node.max_output_frames(chunk));
    let mut start = 0;
    let mut message = 0;
    let collect = |output: &AudioBuf, out_planes: &mut Vec<Vec<f32>>| {
        for (c, p) in out_planes.iter_mut().enumerate() {
            p.extend_from_slice(output.channel(c));
        }
    };
    while start < frames {
        let len = chunk.min(frames - start);
        input.set_shape(planes.len(), len);
        for (c, p) in planes.iter().enumerate() {
            input.channel_mut(c).copy_from_slice(&p[start..start + len]);
        }
        node.process(&input, &mut output, &mut log.ctx("node", message, start as u64));
        collect(&output, &mut out_planes);
        start += len;
        message += 1;
    }
    node.flush(&mut output, &mut log.ctx("node", message, start as u64));
    collect(&output, &mut out_planes);
    out_planes
}

/// Deterministic white noise, uniform in [-amplitude, amplitude], from `seed` (xorshift64*), so
/// tests that use noise give the same numbers on every run.
pub fn noise(seed: u64, amplitude: f64, frames: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..frames)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11; // 53 random bits
            let unit = bits as f64 / (1u64 << 53) as f64; // [0, 1)
            (amplitude * (2.0 * unit - 1.0)) as f32
        })
        .collect()
}

/// Amplitude of the component of `signal` at `freq` Hz: the least-squares fit of
/// `a·sin + b·cos + c`, as in [`thd_n_db`], reported as `sqrt(a² + b²)`.
pub fn sine_amplitude(signal: &[f32], freq: f64, sample_rate: u32) -> f64 {
    let w = 2.0 * PI * freq / f64::from(sample_rate);
    let mut m = [[0.0; 3]; 3];
    let mut v = [0.0; 3];
    for (i, &x) in signal.iter().enumerate() {
        let basis = [(w * i as f64).sin(), (w * i as f64).cos(), 1.0];
        for r in 0..3 {
            for k in 0..3 {
                m[r][k] += basis[r] * basis[k];
            }
            v[r] += basis[r] * f64::from(x);
        }
    }
    let [a, b, _] = solve3(m, v);
    a.hypot(b)
}

/// Runs an in-place node over `planes` in consecutive tiles of `tile` frames (the last one
/// shorter), the way the executor does, and returns the output planes (the node may change the
/// channel count). Used for chunk-size-invariance tests.
pub fn run_in_place(node: &mut dyn InPlaceNode, planes: &[Vec<f32>], tile: usize) -> Vec<Vec<f32>> {
    let frames = planes.first().map_or(0, Vec::len);
    // The executor sizes buffers for the most channels any stage can produce.
    let mut buf = AudioBuf::new(MAX_CHANNELS, frames);
    buf.set_shape(planes.len(), frames);
    for (c, p) in planes.iter().enumerate() {
        buf.channel_mut(c).copy_from_slice(p);
    }
    let mut log = EventLog::default();
    let mut channels = planes.len();
    let mut start = 0;
    while start < frames {
        let len = tile.min(frames - start);
        let mut view = buf.view_mut(start, len);
        view.set_channels(planes.len());
        node.process(&mut view, &mut log.ctx("t", 0, start as u64));
        channels = view.channels();
        start += len;
    }
    buf.set_shape(channels, frames);
    (0..channels).map(|c| buf.channel(c).to_vec()).collect()
}

/// Feeds `planes` to an analysis node in blocks of `block_frames` frames (0 = all in one block),
/// then calls `finish`, and returns the events it emitted, parsed. Block `n` is message `n`.
pub fn analyze_in_blocks(node: &mut dyn AnalysisNode, planes: &[Vec<f32>], block_frames: usize) -> Vec<serde_json::Value> {
    let frames = planes.first().map_or(0, Vec::len);
    let block = if block_frames == 0 { frames.max(1) } else { block_frames };
    let mut log = EventLog::default();
    let mut buf = AudioBuf::new(planes.len(), block);
    let mut start = 0;
    let mut message = 0;
    while start < frames {
        let n = block.min(frames - start);
        buf.set_shape(planes.len(), n);
        for (c, p) in planes.iter().enumerate() {
            buf.channel_mut(c).copy_from_slice(&p[start..start + n]);
        }
        node.analyze(&buf, &mut log.ctx("n", message, start as u64));
        start += n;
        message += 1;
    }
    node.finish(&mut log.ctx("n", message, frames as u64));
    log.parsed()
}

/// The `(name, sample, data)` of each event: what must not depend on how the stream was cut.
pub fn timeline(events: &[serde_json::Value]) -> Vec<(String, u64, serde_json::Value)> {
    events
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_string(), e["sample"].as_u64().unwrap_or(u64::MAX), e["data"].clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thd_n_of_a_pure_sine_is_tiny_and_of_a_noisy_one_is_not() {
        let s = sine(1000.0, 48_000, 0.5, 48_000);
        assert!(thd_n_db(&s, 1000.0, 48_000) < -130.0);
        let noisy: Vec<f32> = s.iter().enumerate().map(|(i, x)| x + if i % 2 == 0 { 0.005 } else { -0.005 }).collect();
        let t = thd_n_db(&noisy, 1000.0, 48_000);
        assert!((t - -37.0).abs() < 1.0, "{t}");
    }

    #[test]
    fn fixture_recordings_load() {
        let (planes, rate) = read_fixture_audio("tones-48k-stereo.wav");
        assert_eq!((planes.len(), rate), (2, 48_000));
    }
}
