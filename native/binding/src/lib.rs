//! napi-rs glue over `remotemedia-dsp`: argument checks, buffer contracts and error mapping.
//! No audio math lives here.

use napi::bindgen_prelude::{Buffer, Float32Array};
use napi::{Error, Result, Status};
use napi_derive::napi;
use remotemedia_dsp::codec::{self, Encoding};

/// Stable error codes surfaced to JavaScript in `error.code` (mirrored in `src/errors.ts`).
mod codes {
    pub const BAD_AUDIO: &str = "RM_ERR_BAD_AUDIO";
}

fn bad_audio(err: impl std::fmt::Display) -> Error {
    Error::new(Status::InvalidArg, format!("{}: {err}", codes::BAD_AUDIO))
}

/// Decodes interleaved signed 16-bit little-endian PCM to f32 samples in [-1, 1),
/// keeping the interleaving. Throws `RM_ERR_BAD_AUDIO` on an odd byte length.
#[napi(js_name = "s16leToF32")]
pub fn s16le_to_f32(pcm: Buffer) -> Result<Float32Array> {
    let frames = codec::frames_in(pcm.len(), Encoding::S16le, 1).map_err(bad_audio)?;
    let mut out = vec![0.0f32; frames];
    codec::decode(&pcm, Encoding::S16le, &mut [&mut out[..]]).map_err(bad_audio)?;
    Ok(Float32Array::new(out))
}
