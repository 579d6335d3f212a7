//! The audio the sessions send: 48 kHz stereo s16le (the `start` message says so), cut into frames
//! once at startup so that sending one costs a copy and nothing else.

/// Sample rate of every frame sent.
pub const SAMPLE_RATE: u32 = 48_000;
/// Channels of every frame sent.
pub const CHANNELS: u32 = 2;

/// One second of a 440 Hz tone at -12 dBFS, as frames of `frame_ms`. 440 whole cycles fit in a
/// second, so the frames loop without a click.
pub fn tone_frames(frame_ms: u32) -> Vec<Vec<u8>> {
    let amplitude = 32767.0 * 10f64.powf(-12.0 / 20.0);
    let pcm: Vec<u8> = (0..SAMPLE_RATE)
        .flat_map(|i| {
            let s = (amplitude
                * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / SAMPLE_RATE as f64).sin())
                as i16;
            let b = s.to_le_bytes();
            [b[0], b[1], b[0], b[1]]
        })
        .collect();
    split(&pcm, frame_ms)
}

/// The frames of a 16-bit PCM WAV file of 48 kHz stereo.
pub fn wav_frames(path: &str, frame_ms: u32) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{path}: not a RIFF/WAVE file"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut at = 12;
    let mut format_ok = false;
    while at + 8 <= bytes.len() {
        let size = u32_at(at + 4) as usize;
        let body = at + 8;
        match &bytes[at..at + 4] {
            b"fmt " if body + 16 <= bytes.len() => {
                let (tag, channels, rate, bits) = (
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 14),
                );
                format_ok = (tag == 1 || tag == 0xFFFE)
                    && bits == 16
                    && channels as u32 == CHANNELS
                    && rate == SAMPLE_RATE;
                if !format_ok {
                    return Err(format!("{path}: need 16-bit PCM, 48 kHz, stereo"));
                }
            }
            b"data" if format_ok => {
                let frames = split(&bytes[body..(body + size).min(bytes.len())], frame_ms);
                return if frames.is_empty() {
                    Err(format!("{path}: shorter than one frame"))
                } else {
                    Ok(frames)
                };
            }
            _ => {}
        }
        at = body + size + (size & 1); // RIFF chunks are padded to even sizes
    }
    Err(format!("{path}: no fmt and data chunks"))
}

/// Whole frames of `frame_ms` (the tail shorter than a frame is left out).
fn split(pcm: &[u8], frame_ms: u32) -> Vec<Vec<u8>> {
    let frame_bytes = (SAMPLE_RATE * frame_ms / 1000 * CHANNELS * 2) as usize;
    pcm.chunks_exact(frame_bytes).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_20_ms_frame_is_3840_bytes_and_a_second_holds_50() {
        let frames = tone_frames(20);
        assert_eq!((frames.len(), frames[0].len()), (50, 3840));
        let peak = frames
            .iter()
            .flat_map(|f| f.chunks_exact(2))
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .max();
        assert!(
            peak.is_some_and(|p| (8200..=8231).contains(&p)),
            "-12 dBFS of full scale: {peak:?}"
        );
    }
}
