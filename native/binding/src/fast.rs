//! The per-frame calls (`fastPush`, `fastWake`, `fastTakeBatch`) as plain Node-API callbacks.
//!
//! A `#[napi]` method pays napi-rs's receiver checks on every call: a type-tag lookup on `this` and a
//! borrow registered in a process-wide mutex-guarded map, then released: about 0.35 µs per call here,
//! against 0.03 µs for the same call as a plain Node-API function.
//! These three take a numeric handle instead of `this`: an index into a table owned by the JS thread,
//! with a generation so that a stale handle (its session dropped, its index reused) finds nothing.
//! Everything else stays on napi-rs.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Arc;

use napi::sys;
use remotemedia_dsp::pool::{Pool, Slot};

use crate::JsSink;

/// Handles are `generation × 2^INDEX_BITS + index`, exact in a JavaScript number.
const INDEX_BITS: u32 = 21;
const INDEX_SPAN: f64 = (1u64 << INDEX_BITS) as f64;

/// Objects reachable by handle from this thread's JavaScript.
struct Table<T> {
    entries: Vec<(u32, Option<T>)>,
    free: Vec<usize>,
}

impl<T> Table<T> {
    const fn new() -> Self {
        Table { entries: Vec::new(), free: Vec::new() }
    }

    fn insert(&mut self, value: T) -> f64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                assert!(self.entries.len() < 1 << INDEX_BITS, "more than 2^21 live native objects");
                self.entries.push((0, None));
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[index];
        entry.1 = Some(value);
        f64::from(entry.0) * INDEX_SPAN + index as f64
    }

    fn get(&self, handle: f64) -> Option<&T> {
        let (index, generation) = split(handle)?;
        match self.entries.get(index) {
            Some((g, Some(value))) if *g == generation => Some(value),
            _ => None,
        }
    }

    fn remove(&mut self, handle: f64) {
        let Some((index, generation)) = split(handle) else { return };
        if let Some(entry) = self.entries.get_mut(index) {
            if entry.0 == generation && entry.1.take().is_some() {
                entry.0 = entry.0.wrapping_add(1);
                self.free.push(index);
            }
        }
    }
}

fn split(handle: f64) -> Option<(usize, u32)> {
    if !((0.0..INDEX_SPAN * 4_294_967_296.0).contains(&handle) && handle.fract() == 0.0) {
        return None;
    }
    let generation = (handle / INDEX_SPAN).floor();
    Some(((handle - generation * INDEX_SPAN) as usize, generation as u32))
}

pub(crate) struct SessionEntry {
    pub slot: Arc<Slot>,
    pub pool: Arc<Pool>,
}

pub(crate) struct EngineEntry {
    pub pool: Arc<Pool>,
    pub sink: Arc<JsSink>,
}

thread_local! {
    static SESSIONS: RefCell<Table<SessionEntry>> = const { RefCell::new(Table::new()) };
    static ENGINES: RefCell<Table<EngineEntry>> = const { RefCell::new(Table::new()) };
}

pub(crate) fn add_session(entry: SessionEntry) -> f64 {
    SESSIONS.with(|t| t.borrow_mut().insert(entry))
}

pub(crate) fn add_engine(entry: EngineEntry) -> f64 {
    ENGINES.with(|t| t.borrow_mut().insert(entry))
}

/// Called from `Drop` (a finalizer, possibly while the thread exits: then the table is gone already).
pub(crate) fn remove_session(handle: f64) {
    let _ = SESSIONS.try_with(|t| t.borrow_mut().remove(handle));
}

pub(crate) fn remove_engine(handle: f64) {
    let _ = ENGINES.try_with(|t| t.borrow_mut().remove(handle));
}

/// What a fast call hands back to JavaScript, or the error it throws (`error.code`, `error.message`).
enum Answer {
    Null,
    Number(f64),
    Numbers(Vec<u64>),
    Throw(&'static str, String),
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Reads up to N arguments; missing ones are `undefined` (then refused by the readers below).
unsafe fn args<const N: usize>(env: sys::napi_env, info: sys::napi_callback_info) -> Option<[sys::napi_value; N]> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let status =
        unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) };
    (status == sys::Status::napi_ok && argc >= N).then_some(argv)
}

unsafe fn number(env: sys::napi_env, value: sys::napi_value) -> Option<f64> {
    let mut out = 0.0;
    (unsafe { sys::napi_get_value_double(env, value, &mut out) } == sys::Status::napi_ok).then_some(out)
}

/// The bytes of a Uint8Array (or Buffer), valid for the duration of the call.
unsafe fn bytes<'a>(env: sys::napi_env, value: sys::napi_value) -> Option<&'a mut [u8]> {
    let (mut kind, mut len, mut data) = (0, 0usize, ptr::null_mut());
    let status = unsafe {
        sys::napi_get_typedarray_info(env, value, &mut kind, &mut len, &mut data, ptr::null_mut(), ptr::null_mut())
    };
    if status != sys::Status::napi_ok || kind != sys::TypedarrayType::uint8_array {
        return None;
    }
    // SAFETY: JavaScript owns this memory and runs on this thread only, which is inside this call.
    Some(if len == 0 || data.is_null() { &mut [] } else { unsafe { std::slice::from_raw_parts_mut(data.cast(), len) } })
}

unsafe fn answer(env: sys::napi_env, answer: Answer) -> sys::napi_value {
    let mut out = ptr::null_mut();
    unsafe {
        match answer {
            Answer::Null => {
                sys::napi_get_null(env, &mut out);
            }
            Answer::Number(n) => {
                sys::napi_create_double(env, n, &mut out);
            }
            Answer::Numbers(ns) => {
                sys::napi_create_array_with_length(env, ns.len(), &mut out);
                for (i, n) in ns.into_iter().enumerate() {
                    let mut v = ptr::null_mut();
                    sys::napi_create_double(env, n as f64, &mut v);
                    sys::napi_set_element(env, out, i as u32, v);
                }
            }
            Answer::Throw(code, message) => {
                let code = CString::new(code).unwrap_or_default();
                let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
                sys::napi_throw_error(env, code.as_ptr(), message.as_ptr());
                return ptr::null_mut();
            }
        }
    }
    out
}

/// Runs `f`; a panic becomes an `RM_ERR_NATIVE` exception (it must never unwind into Node).
fn caught(f: impl FnOnce() -> Answer) -> Answer {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Answer::Throw("RM_ERR_NATIVE", "engine panicked".to_string()))
}

fn closed() -> Answer {
    Answer::Throw(crate::CLOSED.0, crate::CLOSED.1.to_string())
}

fn bad_call(name: &str) -> Answer {
    Answer::Throw("RM_ERR_NATIVE", format!("{name}: bad arguments"))
}

/// A call of `(handle, bytes: Uint8Array)`: runs `f` on its arguments, or refuses anything else.
unsafe fn handle_and_bytes(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    name: &str,
    f: impl FnOnce(f64, &mut [u8]) -> Answer,
) -> sys::napi_value {
    let result = match unsafe { args::<2>(env, info) } {
        None => bad_call(name),
        Some([h, b]) => match unsafe { (number(env, h), bytes(env, b)) } {
            (Some(handle), Some(bytes)) => caught(|| f(handle, bytes)),
            _ => bad_call(name),
        },
    };
    unsafe { answer(env, result) }
}

/// `fastPush(session handle, message: Uint8Array): number[] | null` — `NativeSession.push`'s contract
/// (see native.ts `EngineSession.push`).
unsafe extern "C" fn fast_push(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe {
        handle_and_bytes(env, info, "fastPush", |handle, message| {
            SESSIONS.with(|t| match t.borrow().get(handle) {
                None => closed(),
                Some(s) => match s.pool.push_deferred(&s.slot, message) {
                    Ok(pushed) if pushed.dropped.is_empty() => Answer::Null,
                    Ok(pushed) => Answer::Numbers(pushed.dropped),
                    Err(_) => closed(),
                },
            })
        })
    }
}

/// `fastWake(engine handle)` — `Pool::wake`: wakes the workers given messages since the last call.
unsafe extern "C" fn fast_wake(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let result = match unsafe { args::<1>(env, info) }.and_then(|[h]| unsafe { number(env, h) }) {
        None => bad_call("fastWake"),
        Some(handle) => caught(|| {
            ENGINES.with(|t| {
                if let Some(e) = t.borrow().get(handle) {
                    e.pool.wake();
                }
            });
            Answer::Null
        }),
    };
    unsafe { answer(env, result) }
}

/// `fastTakeBatch(engine handle, out: Uint8Array): number` — see `crate::take_batch_into`.
unsafe extern "C" fn fast_take_batch(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe {
        handle_and_bytes(env, info, "fastTakeBatch", |handle, out| {
            ENGINES.with(|t| match t.borrow().get(handle) {
                None => Answer::Number(0.0),
                Some(e) => Answer::Number(crate::take_batch_into(&e.sink, out) as f64),
            })
        })
    }
}

/// Adds the fast calls to the module's exports (from the `#[napi(module_exports)]` hook in lib.rs).
pub(crate) fn export(env: sys::napi_env, exports: sys::napi_value) -> napi::Result<()> {
    let calls: [(&str, Callback); 3] =
        [("fastPush", fast_push), ("fastWake", fast_wake), ("fastTakeBatch", fast_take_batch)];
    for (name, callback) in calls {
        let c_name = CString::new(name).map_err(|e| napi::Error::from_reason(e.to_string()))?;
        let mut function = ptr::null_mut();
        // SAFETY: called on the JS thread during module initialisation with the module's env.
        let status = unsafe {
            sys::napi_create_function(
                env,
                c_name.as_ptr() as *const c_char,
                name.len() as isize,
                Some(callback),
                ptr::null_mut(),
                &mut function,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot create {name}")));
        }
        let status = unsafe { sys::napi_set_named_property(env, exports, c_name.as_ptr(), function) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("cannot export {name}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_finds_its_object_until_removed_and_never_after() {
        let mut t = Table::new();
        let a = t.insert("a");
        let b = t.insert("b");
        assert_eq!(t.get(a), Some(&"a"));
        assert_eq!(t.get(b), Some(&"b"));
        t.remove(a);
        assert_eq!(t.get(a), None);
        // The index is reused with a new generation: the stale handle still finds nothing.
        let c = t.insert("c");
        assert_ne!(c, a);
        assert_eq!(t.get(a), None);
        assert_eq!(t.get(c), Some(&"c"));
        // Removing a stale handle does not remove its index's new occupant.
        t.remove(a);
        assert_eq!(t.get(c), Some(&"c"));
    }

    #[test]
    fn malformed_handles_find_nothing() {
        let mut t = Table::new();
        let a = t.insert(1);
        for h in [-1.0, 0.5, f64::NAN, f64::INFINITY, a + INDEX_SPAN, 1e300] {
            assert_eq!(t.get(h), None, "{h}");
        }
        assert_eq!(t.get(a), Some(&1));
    }
}
