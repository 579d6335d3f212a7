//! A minimal hand-written binding to libsoxr (`/usr/include/soxr.h`, Debian's `libsoxr-dev`):
//! just enough to stream mono `f32` through a resampler of a chosen quality recipe.

use std::ffi::{c_char, c_double, c_uint, c_ulong, c_void, CStr};
use std::ptr;

/// `soxr_t`: an opaque resampler handle.
type SoxrT = *mut c_void;
/// `soxr_error_t`: null on success, else a static C string.
type SoxrError = *const c_char;

/// `SOXR_FLOAT32_I` of `soxr_datatype_t`.
const SOXR_FLOAT32_I: c_uint = 0;
/// `SOXR_HQ` (= `SOXR_20_BITQ`): libsoxr's default "high quality" recipe.
pub const SOXR_HQ: c_ulong = 4;

/// `struct soxr_io_spec`.
#[repr(C)]
struct IoSpec {
    itype: c_uint,
    otype: c_uint,
    scale: c_double,
    e: *mut c_void,
    flags: c_ulong,
}

/// `struct soxr_quality_spec`.
#[repr(C)]
struct QualitySpec {
    precision: c_double,
    phase_response: c_double,
    passband_end: c_double,
    stopband_begin: c_double,
    e: *mut c_void,
    flags: c_ulong,
}

extern "C" {
    fn soxr_create(
        input_rate: c_double,
        output_rate: c_double,
        num_channels: c_uint,
        error: *mut SoxrError,
        io_spec: *const IoSpec,
        quality_spec: *const QualitySpec,
        runtime_spec: *const c_void,
    ) -> SoxrT;
    fn soxr_process(
        resampler: SoxrT,
        input: *const c_void,
        ilen: usize,
        idone: *mut usize,
        output: *mut c_void,
        olen: usize,
        odone: *mut usize,
    ) -> SoxrError;
    fn soxr_delete(resampler: SoxrT);
    fn soxr_quality_spec(recipe: c_ulong, flags: c_ulong) -> QualitySpec;
    fn soxr_io_spec(itype: c_uint, otype: c_uint) -> IoSpec;
    fn soxr_version() -> *const c_char;
}

/// libsoxr's version string, e.g. `libsoxr-0.1.3`.
pub fn version() -> String {
    // SAFETY: soxr_version returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(soxr_version()) }.to_string_lossy().into_owned()
}

fn check(error: SoxrError) -> Result<(), String> {
    if error.is_null() {
        Ok(())
    } else {
        // SAFETY: a non-null soxr_error_t points at a static NUL-terminated message.
        Err(unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned())
    }
}

/// A mono `f32` stream resampler (single-threaded, libsoxr's default runtime).
pub struct Soxr {
    handle: SoxrT,
}

impl Soxr {
    /// A resampler from `from` Hz to `to` Hz with quality `recipe` (e.g. [`SOXR_HQ`]).
    pub fn new(from: f64, to: f64, recipe: c_ulong) -> Result<Soxr, String> {
        let mut error: SoxrError = ptr::null();
        // SAFETY: the spec constructors take plain integers and return plain structs; soxr_create
        // reads the two specs (which outlive the call) and writes `error`.
        let handle = unsafe {
            let io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
            let quality = soxr_quality_spec(recipe, 0);
            soxr_create(from, to, 1, &mut error, &io, &quality, ptr::null())
        };
        check(error)?;
        if handle.is_null() {
            return Err("soxr_create returned null".into());
        }
        Ok(Soxr { handle })
    }

    /// Pushes `input` and writes what is ready into `output`; returns the frames written.
    /// Consumes the whole input as long as `output` has room for what it releases.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) -> Result<usize, String> {
        let (mut idone, mut odone) = (0usize, 0usize);
        // SAFETY: the handle is live; the pointers and lengths describe valid f32 slices (mono, so
        // samples = frames), and soxr reads/writes at most `len` frames of each.
        let error = unsafe {
            soxr_process(
                self.handle,
                input.as_ptr().cast(),
                input.len(),
                &mut idone,
                output.as_mut_ptr().cast(),
                output.len(),
                &mut odone,
            )
        };
        check(error)?;
        if idone != input.len() {
            return Err(format!("soxr took {idone} of {} frames", input.len()));
        }
        Ok(odone)
    }
}

impl Drop for Soxr {
    fn drop(&mut self) {
        // SAFETY: the handle came from soxr_create and is deleted once.
        unsafe { soxr_delete(self.handle) };
    }
}
