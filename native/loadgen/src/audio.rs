//! The audio the sessions send, s16le (the `start` message names its rate and channels), cut into
//! frames once at startup so that sending one costs a copy and nothing else.

/// The built-in tone's sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// The built-in tone's channels.
pub const CHANNELS: u32 = 2;

/// Interleaved s16le frames of `frame_ms` and their format.
pub struct Audio {
    /// Hz.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u32,
    /// Whole frames; sessions loop over them.
    pub frames: Vec<Vec<u8>>,
}

/// One second of a 440 Hz tone at -12 dBFS, 48 kHz stereo, as frames of `frame_ms`. 440 whole
/// cycles fit in a second, so the frames loop without a click.
pub fn tone(frame_ms: u32) -> Audio {
    Audio {
        sample_rate: SAMPLE_RATE,
        channels: CHANNELS,
        frames: tone_frames(frame_ms),
    }
}

fn tone_frames(frame_ms: u32) -> Vec<Vec<u8>> {
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
    split(&pcm, SAMPLE_RATE, CHANNELS, frame_ms)
}

/// The frames of a 16-bit PCM WAV file, in its own rate and channel count.
pub fn wav(path: &str, frame_ms: u32) -> Result<Audio, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{path}: not a RIFF/WAVE file"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut at = 12;
    let mut format: Option<(u32, u32)> = None;
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
                if !((tag == 1 || tag == 0xFFFE) && bits == 16 && channels > 0 && rate > 0) {
                    return Err(format!("{path}: need 16-bit PCM"));
                }
                format = Some((rate, channels as u32));
            }
            b"data" => {
                let (sample_rate, channels) =
                    format.ok_or_else(|| format!("{path}: data before fmt"))?;
                let frames = split(
                    &bytes[body..(body + size).min(bytes.len())],
                    sample_rate,
                    channels,
                    frame_ms,
                );
                if frames.is_empty() {
                    return Err(format!("{path}: shorter than one frame"));
                }
                return Ok(Audio {
                    sample_rate,
                    channels,
                    frames,
                });
            }
            _ => {}
        }
        at = body + size + (size & 1); // RIFF chunks are padded to even sizes
    }
    Err(format!("{path}: no fmt and data chunks"))
}

/// Whole frames of `frame_ms` (the tail shorter than a frame is left out).
fn split(pcm: &[u8], sample_rate: u32, channels: u32, frame_ms: u32) -> Vec<Vec<u8>> {
    let frame_bytes = (sample_rate as u64 * frame_ms as u64 / 1000 * channels as u64 * 2) as usize;
    pcm.chunks_exact(frame_bytes).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_20_ms_frame_is_3840_bytes_and_a_second_holds_50() {
        let frames = tone(20).frames;
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

    #[test]
    fn a_wav_file_streams_in_its_own_format() {
        // RIFF, fmt (PCM, mono, 16 kHz, 16 bit), 1,000 samples of data: 62.5 ms, so three 20 ms frames.
        let data = vec![0u8; 2000];
        let mut file = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        for field in [
            16u32.to_le_bytes(),
            [1, 0, 1, 0],
            16_000u32.to_le_bytes(),
            32_000u32.to_le_bytes(),
            [2, 0, 16, 0],
        ] {
            file.extend_from_slice(&field);
        }
        file.extend_from_slice(b"data");
        file.extend_from_slice(&(data.len() as u32).to_le_bytes());
        file.extend_from_slice(&data);
        let path = std::env::temp_dir().join(format!("rm-loadgen-{}.wav", std::process::id()));
        std::fs::write(&path, file).unwrap();
        let audio = wav(path.to_str().unwrap(), 20).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(
            (audio.sample_rate, audio.channels, audio.frames.len()),
            (16_000, 1, 3)
        );
        assert_eq!(audio.frames[0].len(), 640);
    }
}
