//! RIFF/WAVE reading and writing: 16-bit PCM and 32-bit float, any rate and channel count,
//! including WAVE_FORMAT_EXTENSIBLE headers. Used by the batch path and by tests.

use std::fmt;

use crate::codec::Encoding;
use crate::format::{Format, MAX_CHANNELS};

/// A parsed WAV file: its format, sample encoding and the interleaved sample bytes.
#[derive(Debug)]
pub struct Wav<'a> {
    /// Rate and channels.
    pub format: Format,
    /// `S16le` or `F32le`.
    pub encoding: Encoding,
    /// Interleaved sample bytes of the `data` chunk (whole frames only).
    pub data: &'a [u8],
}

/// Why a WAV could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavError(pub String);

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WavError {}

fn err<T>(msg: impl Into<String>) -> Result<T, WavError> {
    Err(WavError(msg.into()))
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

const PCM: u16 = 1;
const IEEE_FLOAT: u16 = 3;
const EXTENSIBLE: u16 = 0xFFFE;

/// Parses a WAV held in memory without copying its samples.
pub fn parse(bytes: &[u8]) -> Result<Wav<'_>, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return err("not a RIFF/WAVE file");
    }
    let mut at = 12;
    let mut fmt: Option<(u16, usize, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4) as usize;
        let body = at + 8;
        // A truncated final data chunk (streams written before their size was known) is read to the end.
        let end = body.saturating_add(size).min(bytes.len());
        match id {
            b"fmt " => {
                if end - body < 16 {
                    return err("fmt chunk is shorter than 16 bytes");
                }
                let mut tag = u16_at(bytes, body);
                let channels = u16_at(bytes, body + 2) as usize;
                let rate = u32_at(bytes, body + 4);
                let bits = u16_at(bytes, body + 14);
                if tag == EXTENSIBLE {
                    if end - body < 26 {
                        return err("WAVE_FORMAT_EXTENSIBLE fmt chunk is too short");
                    }
                    // The sub-format GUID starts with the plain format tag.
                    tag = u16_at(bytes, body + 24);
                }
                fmt = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let Some((tag, channels, rate, bits)) = fmt else {
                    return err("data chunk before fmt chunk");
                };
                let encoding = match (tag, bits) {
                    (PCM, 16) => Encoding::S16le,
                    (IEEE_FLOAT, 32) => Encoding::F32le,
                    _ => return err(format!("unsupported sample format (tag {tag}, {bits} bits); use 16-bit PCM or 32-bit float")),
                };
                if channels == 0 || channels > MAX_CHANNELS {
                    return err(format!("{channels} channels; 1..={MAX_CHANNELS} are supported"));
                }
                let format = Format::new(rate, channels).map_err(WavError)?;
                let frame_bytes = channels * encoding.bytes_per_sample();
                let data = &bytes[body..end];
                let whole = data.len() - data.len() % frame_bytes;
                return Ok(Wav { format, encoding, data: &data[..whole] });
            }
            _ => {}
        }
        // Chunks are word-aligned.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    err("no data chunk")
}

/// Writes a canonical 44-byte-header WAV of `data` (interleaved samples in `encoding`).
pub fn write(format: Format, encoding: Encoding, data: &[u8], out: &mut Vec<u8>) {
    write_header(format, encoding, data.len(), out);
    out.extend_from_slice(data);
}

/// Writes the canonical 44-byte header of a WAV whose data chunk holds `data_bytes` bytes.
pub fn write_header(format: Format, encoding: Encoding, data_bytes: usize, out: &mut Vec<u8>) {
    let (tag, bits) = match encoding {
        Encoding::F32le => (IEEE_FLOAT, 32u16),
        _ => (PCM, 16u16),
    };
    let block_align = format.channels as u16 * bits / 8;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_bytes as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&(format.channels as u16).to_le_bytes());
    out.extend_from_slice(&format.sample_rate.to_le_bytes());
    out.extend_from_slice(&(format.sample_rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_bytes as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_parse_round_trips() {
        let f = Format::new(16_000, 2).unwrap();
        let mut out = Vec::new();
        write(f, Encoding::S16le, &[1, 0, 2, 0, 3, 0, 4, 0], &mut out);
        let w = parse(&out).unwrap();
        assert_eq!(w.format, f);
        assert_eq!(w.encoding, Encoding::S16le);
        assert_eq!(w.data, &[1, 0, 2, 0, 3, 0, 4, 0]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(b"RIFF\0\0\0\0WAVEdata\xff\xff\xff\xff").is_err());
        let mut out = Vec::new();
        write(Format::new(8_000, 1).unwrap(), Encoding::S16le, &[], &mut out);
        out[20] = 7; // unknown format tag
        assert!(parse(&out).is_err());
    }
}
