//! Sample encodings at the session edges (docs/protocol.md §2): `s16le`, `f32le`, G.711 μ-law and A-law.
//! (The fifth wire encoding, `opus`, carries packets rather than samples: crate::opus.)
//!
//! Inside the engine audio is planar `f32` in [-1, 1]. Decoders read interleaved bytes and write one
//! slice per channel; encoders do the reverse. None of them allocate.
//!
//! G.711 follows the classic public-domain `g711.c`: codes expand to the 16-bit scale (μ-law peaks at
//! ±32124, A-law at ±32256) and the compressor picks one of the two quantisation levels around each
//! input sample.

use std::fmt;

/// A wire encoding of one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Signed 16-bit little-endian PCM.
    S16le,
    /// 32-bit IEEE float little-endian PCM.
    F32le,
    /// G.711 μ-law, one byte per sample.
    Mulaw,
    /// G.711 A-law, one byte per sample.
    Alaw,
}

impl Encoding {
    /// Every encoding, in wire-name order.
    pub const ALL: [Encoding; 4] = [Encoding::S16le, Encoding::F32le, Encoding::Mulaw, Encoding::Alaw];

    /// Bytes one sample takes on the wire.
    pub const fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::S16le => 2,
            Encoding::F32le => 4,
            Encoding::Mulaw | Encoding::Alaw => 1,
        }
    }

    /// The wire name (docs/protocol.md §2).
    pub const fn name(self) -> &'static str {
        match self {
            Encoding::S16le => "s16le",
            Encoding::F32le => "f32le",
            Encoding::Mulaw => "mulaw",
            Encoding::Alaw => "alaw",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a buffer could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The byte length is not a whole number of sample frames.
    PartialFrame {
        /// Bytes received.
        bytes: usize,
        /// Bytes in one sample frame (all channels).
        frame_bytes: usize,
    },
    /// The caller's output is smaller than the decoded audio.
    OutputTooSmall {
        /// Frames the input holds.
        needed: usize,
        /// Frames the output can hold.
        capacity: usize,
    },
    /// libopus refused an Opus packet (crate::opus), and why.
    BadPacket(&'static str),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::PartialFrame { bytes, frame_bytes } => {
                write!(f, "{bytes} bytes is not a whole number of {frame_bytes}-byte sample frames")
            }
            CodecError::OutputTooSmall { needed, capacity } => {
                write!(f, "output holds {capacity} frames, input has {needed}")
            }
            CodecError::BadPacket(why) => write!(f, "opus packet refused: {why}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Number of sample frames in `bytes` of interleaved audio, or why it is not whole.
pub fn frames_in(bytes: usize, encoding: Encoding, channels: usize) -> Result<usize, CodecError> {
    let frame_bytes = encoding.bytes_per_sample() * channels;
    if frame_bytes == 0 || !bytes.is_multiple_of(frame_bytes) {
        return Err(CodecError::PartialFrame { bytes, frame_bytes });
    }
    Ok(bytes / frame_bytes)
}

const S16_SCALE: f32 = 32768.0;

/// One 16-bit sample to f32 in [-1, 1).
#[inline]
pub fn s16_to_f32(s: i16) -> f32 {
    f32::from(s) / S16_SCALE
}

/// One f32 sample to 16 bits, rounded to nearest and clamped (no wrap-around on overload).
#[inline]
pub fn f32_to_s16(x: f32) -> i16 {
    // Clamped first (NaN to 0), then rounded half away from zero as a truncation of y ± (0.5 − 2⁻²⁵):
    // exact for |y| ≤ 32768 (tested over every half step). Written so that a loop of it vectorises:
    // `f32::round` is a libm call per sample, and a saturating `as` is scalar code.
    let y = (x * S16_SCALE).clamp(-32768.0, 32767.0);
    let y = if y.is_nan() { 0.0 } else { y + HALF_BELOW.copysign(y) };
    // SAFETY: y is finite and within ±32768.5, so it fits an i32.
    unsafe { y.to_int_unchecked::<i32>() as i16 }
}

/// The largest f32 below one half.
const HALF_BELOW: f32 = 0.5 - 1.0 / 33_554_432.0;

/// Largest magnitude an `f32le` input sample keeps (+96 dBFS): louder finite samples are clamped, so
/// that no input can overflow the f32 state of a node (a gain of +48 dB then a filter, say).
pub const MAX_F32_INPUT: f32 = 65_536.0;

/// Replaces every non-finite sample (NaN, ±Inf: only `f32le` can carry them) by 0 and clamps the rest
/// to ±[`MAX_F32_INPUT`]; returns how many were non-finite.
pub fn zero_non_finite(planes: &mut [&mut [f32]]) -> u64 {
    let mut replaced = 0;
    for plane in planes.iter_mut() {
        for x in plane.iter_mut() {
            if x.is_finite() {
                *x = x.clamp(-MAX_F32_INPUT, MAX_F32_INPUT);
            } else {
                *x = 0.0;
                replaced += 1;
            }
        }
    }
    replaced
}

/// `x`, with NaN as 0 and ±Inf as the largest finite value of that sign.
#[inline]
fn finite(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(f32::MIN, f32::MAX)
    }
}

/// Decodes interleaved bytes into planar channels. Each `out[c]` must hold at least the frame count.
/// Returns the number of frames written.
pub fn decode(
    bytes: &[u8],
    encoding: Encoding,
    out: &mut [&mut [f32]],
) -> Result<usize, CodecError> {
    let channels = out.len();
    let frames = frames_in(bytes.len(), encoding, channels)?;
    let capacity = out.iter().map(|c| c.len()).min().unwrap_or(0);
    if capacity < frames {
        return Err(CodecError::OutputTooSmall { needed: frames, capacity });
    }
    let width = encoding.bytes_per_sample();
    let bytes = &bytes[..frames * channels * width];
    match encoding {
        Encoding::S16le => decode_s16(bytes, out, frames),
        Encoding::F32le => deinterleave::<4>(bytes, out, frames, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Encoding::Mulaw => deinterleave::<1>(bytes, out, frames, |b| s16_to_f32(ulaw_to_s16(b[0]))),
        Encoding::Alaw => deinterleave::<1>(bytes, out, frames, |b| s16_to_f32(alaw_to_s16(b[0]))),
    }
    Ok(frames)
}

/// Splits interleaved samples of `W` bytes into planes. Mono and stereo get loops of their own,
/// which the compiler vectorises; a strided iterator over all channels does not.
#[inline(always)]
fn deinterleave<const W: usize>(bytes: &[u8], out: &mut [&mut [f32]], frames: usize, sample: impl Fn(&[u8; W]) -> f32) {
    let word = |b: &[u8]| -> [u8; W] { b.try_into().expect("chunks of W bytes") };
    match out {
        [mono] => {
            for (o, b) in mono[..frames].iter_mut().zip(bytes.chunks_exact(W)) {
                *o = sample(&word(b));
            }
        }
        [left, right] => {
            for ((l, r), b) in left[..frames].iter_mut().zip(right[..frames].iter_mut()).zip(bytes.chunks_exact(2 * W)) {
                *l = sample(&word(&b[..W]));
                *r = sample(&word(&b[W..]));
            }
        }
        planes => {
            let channels = planes.len();
            for (i, b) in bytes.chunks_exact(channels * W).enumerate() {
                for (c, plane) in planes.iter_mut().enumerate() {
                    plane[i] = sample(&word(&b[c * W..(c + 1) * W]));
                }
            }
        }
    }
}

/// Frames per block of the s16 paths below.
const BLOCK: usize = 64;

/// s16le to planes. Mono and stereo go a block at a time through fixed-size arrays, as whole
/// little-endian words split with shifts: loops the compiler turns into vector code (the per-sample
/// byte chunks of [`deinterleave`] stay scalar, about 1 ns a sample). Other layouts use [`deinterleave`].
fn decode_s16(bytes: &[u8], out: &mut [&mut [f32]], frames: usize) {
    match out {
        [mono] => {
            for (o, b) in mono[..frames].chunks_mut(BLOCK).zip(bytes.chunks(2 * BLOCK)) {
                for (x, w) in o.iter_mut().zip(b.chunks_exact(2)) {
                    *x = s16_to_f32(i16::from_le_bytes([w[0], w[1]]));
                }
            }
        }
        [left, right] => {
            let (left, right) = (&mut left[..frames], &mut right[..frames]);
            for ((l, r), b) in left.chunks_mut(BLOCK).zip(right.chunks_mut(BLOCK)).zip(bytes.chunks(4 * BLOCK)) {
                let mut words = [0u32; BLOCK];
                for (w, b) in words.iter_mut().zip(b.chunks_exact(4)) {
                    *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                for ((l, r), &w) in l.iter_mut().zip(r.iter_mut()).zip(&words) {
                    *l = s16_to_f32(w as u16 as i16);
                    *r = s16_to_f32((w >> 16) as u16 as i16);
                }
            }
        }
        planes => deinterleave::<2>(bytes, planes, frames, |b| s16_to_f32(i16::from_le_bytes([b[0], b[1]]))),
    }
}

/// Planes to s16le, the mirror of [`decode_s16`]: each block is converted into a fixed-size array
/// first, then packed into little-endian words, so both loops vectorise.
fn encode_s16(planes: &[&[f32]], frames: usize, dst: &mut [u8]) {
    match planes {
        [mono] => {
            for (d, x) in dst.chunks_mut(2 * BLOCK).zip(mono[..frames].chunks(BLOCK)) {
                let mut samples = [0i16; BLOCK];
                for (s, &x) in samples.iter_mut().zip(x) {
                    *s = f32_to_s16(x);
                }
                for (d, s) in d.chunks_exact_mut(2).zip(&samples) {
                    d.copy_from_slice(&s.to_le_bytes());
                }
            }
        }
        [left, right] => {
            let blocks = left[..frames].chunks(BLOCK).zip(right[..frames].chunks(BLOCK));
            for (d, (l, r)) in dst.chunks_mut(4 * BLOCK).zip(blocks) {
                let mut words = [0u32; BLOCK];
                for ((w, &l), &r) in words.iter_mut().zip(l).zip(r) {
                    *w = u32::from(f32_to_s16(l) as u16) | (u32::from(f32_to_s16(r) as u16) << 16);
                }
                for (d, w) in d.chunks_exact_mut(4).zip(&words) {
                    d.copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        planes => interleave(planes, frames, dst, |x| f32_to_s16(x).to_le_bytes()),
    }
}

/// Interleaves planes into samples of `W` bytes (the mirror of [`deinterleave`]).
#[inline(always)]
fn interleave<const W: usize>(planes: &[&[f32]], frames: usize, dst: &mut [u8], sample: impl Fn(f32) -> [u8; W]) {
    match planes {
        [mono] => {
            for (d, &x) in dst.chunks_exact_mut(W).zip(&mono[..frames]) {
                d.copy_from_slice(&sample(x));
            }
        }
        [left, right] => {
            for ((d, &l), &r) in dst.chunks_exact_mut(2 * W).zip(&left[..frames]).zip(&right[..frames]) {
                d[..W].copy_from_slice(&sample(l));
                d[W..].copy_from_slice(&sample(r));
            }
        }
        planes => {
            let channels = planes.len();
            for (i, d) in dst.chunks_exact_mut(channels * W).enumerate() {
                for (c, plane) in planes.iter().enumerate() {
                    d[c * W..(c + 1) * W].copy_from_slice(&sample(plane[i]));
                }
            }
        }
    }
}

/// Encodes `frames` frames of planar channels into interleaved bytes appended to `out`.
/// `out` should be reserved by the caller (`frames * channels * bytes_per_sample`) to avoid growth.
pub fn encode(planes: &[&[f32]], frames: usize, encoding: Encoding, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + frames * planes.len() * encoding.bytes_per_sample(), 0);
    let dst = &mut out[start..];
    match encoding {
        Encoding::S16le => encode_s16(planes, frames, dst),
        // Never send NaN or ±Inf (an absurd gain chain can overflow): 0, or the largest finite value.
        Encoding::F32le => interleave(planes, frames, dst, |x| finite(x).to_le_bytes()),
        Encoding::Mulaw => interleave(planes, frames, dst, |x| [s16_to_ulaw(f32_to_s16(x))]),
        Encoding::Alaw => interleave(planes, frames, dst, |x| [s16_to_alaw(f32_to_s16(x))]),
    }
}

// G.711 bit layout shared by both laws: sign in bit 7, segment (exponent) in bits 6..4,
// quantisation step (mantissa) in bits 3..0.
const SIGN_BIT: u8 = 0x80;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
const QUANT_MASK: u8 = 0x0F;
/// μ-law bias added before segment search (g711.c `BIAS`).
const ULAW_BIAS: i32 = 0x84;
/// Largest μ-law magnitude after the 2-bit shift to 14 bits (g711.c `CLIP`).
const ULAW_CLIP: i32 = 8159;

/// Expands a μ-law code to 16-bit linear (ITU-T G.711, §3; values of g711.c `ulaw2linear`).
#[inline]
pub fn ulaw_to_s16(code: u8) -> i16 {
    // Codes are transmitted inverted.
    let u = !code;
    let mantissa = i32::from(u & QUANT_MASK);
    let segment = u32::from((u & SEG_MASK) >> SEG_SHIFT);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    (if u & SIGN_BIT != 0 { -magnitude } else { magnitude }) as i16
}

/// Expands an A-law code to 16-bit linear (ITU-T G.711, §2; values of g711.c `alaw2linear`).
#[inline]
pub fn alaw_to_s16(code: u8) -> i16 {
    // Even bits are inverted on the wire.
    let a = code ^ 0x55;
    let mantissa = i32::from(a & QUANT_MASK) << 4;
    let segment = u32::from((a & SEG_MASK) >> SEG_SHIFT);
    let magnitude = match segment {
        0 => mantissa + 8,
        s => (mantissa + 0x108) << (s - 1),
    };
    (if a & SIGN_BIT != 0 { magnitude } else { -magnitude }) as i16
}

/// Compresses a 16-bit sample to μ-law: the code of one of the two levels around it.
#[inline]
pub fn s16_to_ulaw(sample: i16) -> u8 {
    // Work at the 14-bit scale the law is defined on.
    let mut v = i32::from(sample) >> 2;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    let v = v.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    // Segment = position of the leading one above bit 5 (segment ends 0x3F, 0x7F, …, 0x1FFF).
    let segment = (31 - (v as u32 | 0x3F).leading_zeros()) - 5;
    if segment >= 8 {
        // Past the last segment end (0x1FFF): the largest code.
        return 0x7F ^ mask;
    }
    let code = ((segment as u8) << SEG_SHIFT) | ((v >> (segment + 1)) as u8 & QUANT_MASK);
    code ^ mask
}

/// Compresses a 16-bit sample to A-law: the code of one of the two levels around it.
#[inline]
pub fn s16_to_alaw(sample: i16) -> u8 {
    // Work at the 13-bit scale the law is defined on.
    let mut v = i32::from(sample) >> 3;
    let mask: u8 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    // Segment ends 0x1F, 0x3F, …, 0xFFF; 13-bit input never exceeds 0xFFF.
    let segment = (31 - (v as u32 | 0x1F).leading_zeros()) - 4;
    let step = if segment < 2 { v >> 1 } else { v >> segment };
    let code = ((segment as u8) << SEG_SHIFT) | (step as u8 & QUANT_MASK);
    code ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s16_round_trips_exactly() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(f32_to_s16(s16_to_f32(s)), s);
        }
    }

    #[test]
    fn f32_to_s16_rounds_half_away_from_zero_at_every_step() {
        let reference = |x: f32| (x * S16_SCALE).round().clamp(-32768.0, 32767.0) as i32 as i16;
        for k in -32770i32..=32770 {
            for y in [k as f32 - 0.5, k as f32 + 0.5, k as f32] {
                for y in [y, y.next_down(), y.next_up()] {
                    let x = y / S16_SCALE;
                    assert_eq!(f32_to_s16(x), reference(x), "{y}");
                }
            }
        }
    }

    /// The block paths of s16 (mono, stereo) against the sample-at-a-time definition, at lengths around
    /// the block size, with overloads, NaN, ±Inf and exact half steps.
    #[test]
    fn s16_block_paths_equal_the_sample_definition() {
        let special = [0.0, 1.0, -1.0, 1.5, -7.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.5 / 32768.0, -1.5 / 32768.0];
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for channels in 1..=3 {
            for frames in [0, 1, 63, 64, 65, 130, 960] {
                let planes: Vec<Vec<f32>> = (0..channels)
                    .map(|_| {
                        (0..frames)
                            .map(|i| if i % 7 == 0 { special[(next() as usize) % special.len()] } else { (next() as f32 / u32::MAX as f32) * 2.4 - 1.2 })
                            .collect()
                    })
                    .collect();
                let views: Vec<&[f32]> = planes.iter().map(|p| &p[..]).collect();
                let mut bytes = Vec::new();
                encode(&views, frames, Encoding::S16le, &mut bytes);
                let expected: Vec<u8> = (0..frames).flat_map(|i| planes.iter().map(move |p| p[i])).flat_map(|x| f32_to_s16(x).to_le_bytes()).collect();
                assert_eq!(bytes, expected, "encode, {channels} channels, {frames} frames");

                let mut decoded = vec![vec![9.0f32; frames]; channels];
                let mut outs: Vec<&mut [f32]> = decoded.iter_mut().map(|p| &mut p[..]).collect();
                assert_eq!(decode(&bytes, Encoding::S16le, &mut outs).unwrap(), frames);
                for (c, plane) in decoded.iter().enumerate() {
                    for (i, &x) in plane.iter().enumerate() {
                        let at = 2 * (i * channels + c);
                        assert_eq!(x, s16_to_f32(i16::from_le_bytes([bytes[at], bytes[at + 1]])), "decode, {channels} channels, frame {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn f32_to_s16_clamps_and_maps_nan_to_zero() {
        assert_eq!(f32_to_s16(2.0), i16::MAX);
        assert_eq!(f32_to_s16(-2.0), i16::MIN);
        assert_eq!(f32_to_s16(f32::NAN), 0);
    }

    #[test]
    fn partial_frames_are_rejected() {
        assert_eq!(
            frames_in(6, Encoding::S16le, 2),
            Err(CodecError::PartialFrame { bytes: 6, frame_bytes: 4 })
        );
        assert_eq!(frames_in(8, Encoding::S16le, 2), Ok(2));
    }

    #[test]
    fn decode_deinterleaves() {
        let bytes: Vec<u8> = [1i16, -1, 2, -2].iter().flat_map(|s| s.to_le_bytes()).collect();
        let (mut l, mut r) = ([0.0; 2], [0.0; 2]);
        let n = decode(&bytes, Encoding::S16le, &mut [&mut l, &mut r]).unwrap();
        assert_eq!(n, 2);
        assert_eq!(l, [1.0 / 32768.0, 2.0 / 32768.0]);
        assert_eq!(r, [-1.0 / 32768.0, -2.0 / 32768.0]);
        let mut out = Vec::new();
        encode(&[&l, &r], 2, Encoding::S16le, &mut out);
        assert_eq!(out, bytes);
    }
}
