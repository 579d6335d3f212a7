//! Opus at the session edges (docs/protocol.md §2, docs/audio.md "Opus"): one Opus packet per binary
//! message, 20 ms frames, at 8, 12, 16, 24 or 48 kHz, mono or stereo.
//!
//! libopus does the coding: `opusic-sys` builds it from its bundled source and links it statically, so
//! nothing comes from the system. A [`Decoder`] and an [`Encoder`] hold one session's codec state and
//! every buffer they need, sized once when the session starts: coding a message allocates nothing.
//!
//! A zero-length message stands for a lost packet: the decoder conceals it (libopus packet loss
//! concealment, `opus_decode` without data) with 20 ms of audio continuing what came before.
//!
//! ```text
//!  graph output ──push──▶ pending (interleaved f32, whole 20 ms frames wait here)
//!                            │ encode: up to six whole frames (120 ms, the longest Opus packet)
//!                            ▼
//!                         one packet = the answer; a flush pads the last partial frame with silence
//! ```

use std::ffi::c_int;
use std::ptr::{self, NonNull};

use opusic_sys as ffi;

use crate::codec::CodecError;
use crate::format::Format;

/// Sample rates libopus codes at (RFC 6716 §2: 8, 12, 16, 24 and 48 kHz).
pub const SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// Most channels an Opus stream of ours carries (RFC 7587 §7: mono or stereo).
pub const MAX_CHANNELS: usize = 2;

/// Duration of the frames the encoder makes, and of the audio that conceals one lost packet.
pub const FRAME_MS: u32 = 20;

/// Longest packet (RFC 6716 §3.2.5: at most 120 ms of audio per packet).
pub const MAX_PACKET_MS: u32 = 120;

/// Frames of [`FRAME_MS`] in the longest packet.
const MAX_FRAMES_PER_PACKET: usize = (MAX_PACKET_MS / FRAME_MS) as usize;

/// Largest packet the encoder writes: RFC 6716 §3.2.1 caps one frame at 1275 bytes; the TOC byte, the
/// frame-count byte and two length bytes per frame of a code-3 packet come on top.
pub const MAX_PACKET_BYTES: usize = MAX_FRAMES_PER_PACKET * (1275 + 2) + 2;

/// Checks that libopus can code `format`: one of [`SAMPLE_RATES`], 1 or 2 channels.
pub fn check_format(format: Format) -> Result<(), String> {
    if !SAMPLE_RATES.contains(&format.sample_rate) {
        return Err(format!(
            "opus codes at 8000, 12000, 16000, 24000 or 48000 Hz, not {} Hz",
            format.sample_rate
        ));
    }
    if !(1..=MAX_CHANNELS).contains(&format.channels) {
        return Err(format!("opus carries 1 or 2 channels, not {}", format.channels));
    }
    Ok(())
}

/// What a negative libopus return value means, for an error message.
fn describe(code: c_int) -> &'static str {
    match code {
        ffi::OPUS_BAD_ARG => "bad argument",
        ffi::OPUS_BUFFER_TOO_SMALL => "packet holds more than 120 ms of audio",
        ffi::OPUS_INTERNAL_ERROR => "libopus internal error",
        ffi::OPUS_INVALID_PACKET => "not a valid Opus packet",
        ffi::OPUS_UNIMPLEMENTED => "request not implemented",
        ffi::OPUS_INVALID_STATE => "codec state is invalid",
        ffi::OPUS_ALLOC_FAIL => "libopus could not allocate its state",
        _ => "unknown libopus error",
    }
}

/// Sample frames of one channel in `ms` milliseconds at `sample_rate` (every Opus rate divides evenly).
fn frames_in_ms(sample_rate: u32, ms: u32) -> usize {
    (sample_rate / 1000 * ms) as usize
}

/// One session's Opus decoder: packets in, interleaved `f32` out.
pub struct Decoder {
    state: NonNull<ffi::OpusDecoder>,
    channels: usize,
    /// Frames per channel that conceal one lost packet.
    concealed_frames: usize,
    /// Frames per channel of the longest packet.
    max_frames: usize,
    /// The decoded message, interleaved; holds the longest packet.
    pcm: Vec<f32>,
}

// SAFETY: the decoder state is plain memory owned by this value alone (libopus keeps no thread-local or
// global state for it); a session, and so its decoder, is used by one worker thread at a time.
unsafe impl Send for Decoder {}

impl Decoder {
    /// A decoder for packets heard as `format` (checked with [`check_format`]).
    pub fn new(format: Format) -> Result<Decoder, String> {
        check_format(format)?;
        let mut error: c_int = ffi::OPUS_OK;
        // SAFETY: rate and channel count were checked above; `error` outlives the call.
        let state = unsafe { ffi::opus_decoder_create(format.sample_rate as i32, format.channels as c_int, &mut error) };
        let state = NonNull::new(state).ok_or_else(|| format!("opus decoder: {}", describe(error)))?;
        let max_frames = frames_in_ms(format.sample_rate, MAX_PACKET_MS);
        Ok(Decoder {
            state,
            channels: format.channels,
            concealed_frames: frames_in_ms(format.sample_rate, FRAME_MS),
            max_frames,
            pcm: vec![0.0; max_frames * format.channels],
        })
    }

    /// Most frames (per channel) one message can decode to.
    pub fn max_frames(&self) -> usize {
        self.max_frames
    }

    /// Decodes one message: a packet, or nothing at all for a lost packet, which is concealed with
    /// [`FRAME_MS`] of audio. Returns the interleaved samples. libopus checks a packet's structure before
    /// it decodes anything, so a packet it refuses leaves the decoder as it was.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[f32], CodecError> {
        let (data, len, frames) = if packet.is_empty() {
            (ptr::null(), 0, self.concealed_frames)
        } else {
            let len = i32::try_from(packet.len()).map_err(|_| CodecError::BadPacket(describe(ffi::OPUS_INVALID_PACKET)))?;
            (packet.as_ptr(), len, self.max_frames)
        };
        // SAFETY: `data` is null (concealment) or points at `len` readable bytes; `pcm` holds
        // `max_frames * channels` samples and `frames` is at most `max_frames`.
        let decoded =
            unsafe { ffi::opus_decode_float(self.state.as_ptr(), data, len, self.pcm.as_mut_ptr(), frames as c_int, 0) };
        if decoded < 0 {
            return Err(CodecError::BadPacket(describe(decoded)));
        }
        Ok(&self.pcm[..decoded as usize * self.channels])
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by `opus_decoder_create`, destroyed once.
        unsafe { ffi::opus_decoder_destroy(self.state.as_ptr()) }
    }
}

/// One session's Opus encoder: planar `f32` in, one packet of whole 20 ms frames per answer out.
pub struct Encoder {
    state: NonNull<ffi::OpusEncoder>,
    channels: usize,
    /// Frames per channel of one [`FRAME_MS`] frame.
    frame: usize,
    /// Audio waiting to be encoded, interleaved, clamped to [-1, 1].
    pending: Vec<f32>,
}

// SAFETY: as for `Decoder`.
unsafe impl Send for Encoder {}

impl Encoder {
    /// An encoder for `format` (checked with [`check_format`]) whose queue holds `backlog_frames`
    /// frames per channel before it has to grow.
    pub fn new(format: Format, backlog_frames: usize) -> Result<Encoder, String> {
        check_format(format)?;
        let mut error: c_int = ffi::OPUS_OK;
        // SAFETY: rate and channel count were checked above; `error` outlives the call.
        // OPUS_APPLICATION_AUDIO: the answers are whatever a pipeline makes, music as well as speech.
        let state = unsafe {
            ffi::opus_encoder_create(
                format.sample_rate as i32,
                format.channels as c_int,
                ffi::OPUS_APPLICATION_AUDIO,
                &mut error,
            )
        };
        let state = NonNull::new(state).ok_or_else(|| format!("opus encoder: {}", describe(error)))?;
        let frame = frames_in_ms(format.sample_rate, FRAME_MS);
        let backlog = backlog_frames.max(frame * MAX_FRAMES_PER_PACKET) * format.channels;
        let mut pending = Vec::new();
        pending
            .try_reserve_exact(backlog)
            .map_err(|_| format!("cannot allocate {backlog} samples for the opus encoder's queue"))?;
        Ok(Encoder { state, channels: format.channels, frame, pending })
    }

    /// Frames (per channel) waiting to be encoded.
    pub fn pending_frames(&self) -> usize {
        self.pending.len() / self.channels
    }

    /// Queues `frames` frames of planar audio (one slice per channel).
    pub fn push(&mut self, planes: &[&[f32]], frames: usize) {
        debug_assert_eq!(planes.len(), self.channels);
        for i in 0..frames {
            for plane in planes {
                // NaN to silence; Opus' float input is nominally [-1, 1], as every other output encoding clamps.
                let x = plane[i];
                self.pending.push(if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) });
            }
        }
    }

    /// Encodes the whole 20 ms frames waiting, up to six (120 ms), into one packet appended to `out`;
    /// with `flush`, a last partial frame is padded with silence first. Appends nothing when no whole
    /// frame waits. Frames beyond six stay queued for the next call. `out` should have room for
    /// [`MAX_PACKET_BYTES`] more bytes.
    pub fn encode(&mut self, flush: bool, out: &mut Vec<u8>) {
        let frame_samples = self.frame * self.channels;
        if flush && !self.pending.len().is_multiple_of(frame_samples) {
            let padded = self.pending.len().next_multiple_of(frame_samples);
            self.pending.resize(padded, 0.0);
        }
        let whole = (self.pending.len() / frame_samples).min(MAX_FRAMES_PER_PACKET);
        if whole == 0 {
            return;
        }
        let start = out.len();
        out.resize(start + MAX_PACKET_BYTES, 0);
        // SAFETY: `pending` holds `whole * frame` frames of `channels` samples; `out[start..]` has
        // MAX_PACKET_BYTES writable bytes. 20 ms × 1..=6 are all frame sizes libopus takes.
        let written = unsafe {
            ffi::opus_encode_float(
                self.state.as_ptr(),
                self.pending.as_ptr(),
                (whole * self.frame) as c_int,
                out[start..].as_mut_ptr(),
                MAX_PACKET_BYTES as i32,
            )
        };
        // Every argument is valid by construction, so libopus cannot refuse; if it ever did, the answer
        // must not pass off garbage as audio: the worker turns this panic into the session's 1011.
        assert!(written > 0, "opus encoder: {}", describe(written));
        out.truncate(start + written as usize);
        self.pending.drain(..whole * frame_samples);
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: created by `opus_encoder_create`, destroyed once.
        unsafe { ffi::opus_encoder_destroy(self.state.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sine, sine_amplitude};

    fn format(sample_rate: u32, channels: usize) -> Format {
        Format::new(sample_rate, channels).unwrap()
    }

    /// Power of the component of `x` at `hz` (mean square of the fitted sine).
    fn power_at(x: &[f32], sample_rate: u32, hz: f64) -> f64 {
        sine_amplitude(x, hz, sample_rate).powi(2) / 2.0
    }

    fn mean_square(x: &[f32]) -> f64 {
        x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64
    }

    /// Encodes `signal` (mono) in 20 ms messages and decodes every packet: the round trip of a session.
    fn round_trip(sample_rate: u32, signal: &[f32]) -> (Vec<f32>, Decoder) {
        let f = format(sample_rate, 1);
        let mut encoder = Encoder::new(f, 0).unwrap();
        let mut decoder = Decoder::new(f).unwrap();
        let mut decoded = Vec::new();
        let mut packet = Vec::with_capacity(MAX_PACKET_BYTES);
        for chunk in signal.chunks(frames_in_ms(sample_rate, FRAME_MS)) {
            encoder.push(&[chunk], chunk.len());
            packet.clear();
            encoder.encode(false, &mut packet);
            assert!(!packet.is_empty() && packet.len() <= MAX_PACKET_BYTES);
            decoded.extend_from_slice(decoder.decode(&packet).unwrap());
        }
        (decoded, decoder)
    }

    #[test]
    fn a_sine_survives_the_round_trip_at_every_rate() {
        for rate in SAMPLE_RATES {
            let hz = 440.0;
            let signal = sine(hz, rate, 0.5, rate as usize); // 1 s
            let (decoded, _) = round_trip(rate, &signal);
            assert_eq!(decoded.len(), signal.len(), "{rate} Hz: 20 ms in, 20 ms out");
            // Past the codec's start-up (its lookahead and first frames): level and frequency.
            let tail = &decoded[rate as usize / 5..];
            let level_db = 10.0 * (mean_square(tail) / mean_square(&signal[rate as usize / 5..])).log10();
            assert!(level_db.abs() < 1.0, "{rate} Hz: level off by {level_db:.2} dB");
            let at_tone = power_at(tail, rate, hz);
            let noise = mean_square(tail) - at_tone;
            let snr_db = 10.0 * (at_tone / noise.max(1e-20)).log10();
            assert!(snr_db > 20.0, "{rate} Hz: tone {snr_db:.1} dB above the rest");
        }
    }

    #[test]
    fn stereo_keeps_its_channels_apart() {
        let f = format(48_000, 2);
        let mut encoder = Encoder::new(f, 0).unwrap();
        let mut decoder = Decoder::new(f).unwrap();
        let left = sine(500.0, 48_000, 0.5, 48_000);
        let right = sine(2_000.0, 48_000, 0.5, 48_000);
        let mut decoded = Vec::new();
        let mut packet = Vec::new();
        for (l, r) in left.chunks(960).zip(right.chunks(960)) {
            encoder.push(&[l, r], l.len());
            packet.clear();
            encoder.encode(false, &mut packet);
            decoded.extend_from_slice(decoder.decode(&packet).unwrap());
        }
        let l: Vec<f32> = decoded.iter().step_by(2).copied().skip(9_600).collect();
        let r: Vec<f32> = decoded.iter().skip(1).step_by(2).copied().skip(9_600).collect();
        assert!(power_at(&l, 48_000, 500.0) > 100.0 * power_at(&l, 48_000, 2_000.0));
        assert!(power_at(&r, 48_000, 2_000.0) > 100.0 * power_at(&r, 48_000, 500.0));
    }

    #[test]
    fn a_lost_packet_is_concealed_with_20_ms_that_carry_the_tone_on() {
        let rate = 48_000;
        let signal = sine(440.0, rate, 0.5, rate as usize / 2);
        let (decoded, mut decoder) = round_trip(rate, &signal);
        let before = mean_square(&decoded[decoded.len() - 960..]);
        let concealed = decoder.decode(&[]).unwrap().to_vec();
        assert_eq!(concealed.len(), 960, "20 ms at 48 kHz");
        let level_db = 10.0 * (mean_square(&concealed) / before).log10();
        assert!(level_db > -6.0, "concealment is {level_db:.1} dB below the audio before it");
        let at_tone = power_at(&concealed, rate, 440.0);
        assert!(at_tone > 0.5 * mean_square(&concealed), "concealment continues the 440 Hz tone");
    }

    #[test]
    fn bad_packets_are_refused_with_an_error_and_the_decoder_goes_on() {
        let rate = 16_000;
        let signal = sine(300.0, rate, 0.5, 3_200);
        let (_, mut decoder) = round_trip(rate, &signal);
        // TOC code 3 (arbitrary frame count) whose count byte says 0 frames; a code-1 packet of odd
        // length (two frames of equal size need an even payload); a code-2 first length past the end.
        for bad in [&[0x03u8, 0x00][..], &[0x01, 0xAA, 0xBB, 0xCC], &[0x02, 0xFA]] {
            assert_eq!(decoder.decode(bad), Err(CodecError::BadPacket("not a valid Opus packet")), "{bad:?}");
        }
        // 120 ms packets are the longest: a code-3 packet of 49 frames of 20 ms is refused too.
        assert!(decoder.decode(&[0xFB, 49]).is_err());
        let concealed = decoder.decode(&[]).unwrap();
        assert_eq!(concealed.len(), 320);
    }

    #[test]
    fn only_opus_rates_and_up_to_two_channels_are_taken() {
        assert!(Decoder::new(format(44_100, 1)).err().unwrap().contains("44100 Hz"));
        assert!(Encoder::new(format(48_000, 3), 0).err().unwrap().contains("1 or 2 channels"));
        assert!(check_format(format(24_000, 2)).is_ok());
    }

    #[test]
    fn the_encoder_sends_whole_frames_and_a_flush_pads_the_last_one() {
        let f = format(8_000, 1);
        let mut encoder = Encoder::new(f, 0).unwrap();
        let mut decoder = Decoder::new(f).unwrap();
        let audio = sine(300.0, 8_000, 0.3, 100);
        let mut packet = Vec::new();
        encoder.push(&[&audio], 100); // 12.5 ms: not yet a frame
        encoder.encode(false, &mut packet);
        assert!(packet.is_empty());
        let long = sine(300.0, 8_000, 0.3, 8 * 160);
        encoder.push(&[&long], long.len()); // now 8.625 frames: six go out, the rest waits
        encoder.encode(false, &mut packet);
        assert_eq!(decoder.decode(&packet).unwrap().len(), 6 * 160);
        assert_eq!(encoder.pending_frames(), 100 + 2 * 160);
        packet.clear();
        encoder.encode(true, &mut packet);
        assert_eq!(decoder.decode(&packet).unwrap().len(), 3 * 160);
        assert_eq!(encoder.pending_frames(), 0);
    }
}
