//! The latest answers of a session, kept where they are made (docs/protocol.md §8, resume).
//!
//! A session that can be resumed must be able to send its recent answers again. The worker copies
//! each answer into the session's ring as it writes the answer's record, while the bytes are still in
//! its cache; the record carries where the answer starts. The host logs only those positions and
//! lengths, and reads the bytes back on a resume, which is rare. The thread that carries every
//! socket never copies an answer for the log (a copy into memory that ~1,000 sessions' logs spread
//! over, each answer cold in cache, cost that thread a few per cent of its time and the sessions'
//! round trips their tail).
//!
//!   ring:  │ … answer 41 │ answer 42 │ answer 43 ▸          free           │ (wraps around)
//!   positions count every byte ever written; one is valid while the ring has not written over it.

use std::sync::{Mutex, PoisonError};

/// Buffers of rings that ended, kept for the rings of sessions that start later, up to this many
/// bytes in all. A fresh buffer's pages fault in as the worker first writes them.
const SPARE_BYTES_MAX: usize = 256 << 20;

static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn spare() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    SPARE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Bytes kept in buffers for later rings (tests).
pub fn spare_bytes() -> usize {
    spare().iter().map(Vec::len).sum()
}

/// A byte ring holding the latest answers of one session: at least the last `capacity` bytes.
pub struct AnswerRing {
    buf: Vec<u8>,
    /// Bytes ever appended; the next answer starts here.
    written: u64,
    /// Positions before this one were written over before the ring last grew.
    valid_from: u64,
    /// Grown past the size it was made with: its buffer is freed, not kept for later rings, which
    /// would seldom ask for its size.
    grown: bool,
}

impl AnswerRing {
    /// A ring of `capacity` bytes (at least 1), from a kept buffer of that size when there is one;
    /// `None` when the memory cannot be had (the session is refused, not the process aborted).
    pub fn new(capacity: usize) -> Option<AnswerRing> {
        let capacity = capacity.max(1);
        let kept = {
            let mut spare = spare();
            spare.iter().position(|b| b.len() == capacity).map(|i| spare.swap_remove(i))
        };
        let buf = match kept {
            Some(buf) => buf,
            None => zeroed(capacity)?,
        };
        Some(AnswerRing { buf, written: 0, valid_from: 0, grown: false })
    }

    /// Grows the ring to hold at least `capacity` bytes; every answer it held stays readable at its
    /// position. False (and the ring unchanged) when the memory cannot be had.
    pub fn grow_to(&mut self, capacity: usize) -> bool {
        let old = self.buf.len();
        if capacity <= old {
            return true;
        }
        let Some(mut buf) = zeroed(capacity) else { return false };
        let from = self.written.saturating_sub(old as u64).max(self.valid_from);
        let mut p = from;
        while p < self.written {
            let src = (p % old as u64) as usize;
            let dst = (p % capacity as u64) as usize;
            let n = ((self.written - p) as usize).min(old - src).min(capacity - dst);
            buf[dst..dst + n].copy_from_slice(&self.buf[src..src + n]);
            p += n as u64;
        }
        self.valid_from = from;
        let before = std::mem::replace(&mut self.buf, buf);
        if !self.grown {
            give_back(before);
        }
        self.grown = true;
        true
    }

    /// Bytes it holds at most.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Appends one answer; returns its position, which [`AnswerRing::read`] takes back. An answer
    /// larger than the ring takes its room in positions but is never readable.
    pub fn append(&mut self, bytes: &[u8]) -> u64 {
        let at = self.written;
        let cap = self.buf.len();
        if bytes.len() <= cap {
            let start = (at % cap as u64) as usize;
            let first = bytes.len().min(cap - start);
            self.buf[start..start + first].copy_from_slice(&bytes[..first]);
            self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        }
        self.written += bytes.len() as u64;
        at
    }

    /// The answer of `len` bytes that started at position `at`, given as its low 32 bits (as a
    /// record carries it), copied into `out`; false when it has been written over, or was never
    /// written.
    pub fn read(&self, at: u32, len: usize, out: &mut Vec<u8>) -> bool {
        let cap = self.buf.len() as u64;
        // The latest position with these low bits: answers are far shorter than 4 GiB.
        let back = u64::from((self.written as u32).wrapping_sub(at));
        if back > self.written || (len as u64) > back || back > cap || self.written - back < self.valid_from {
            return false;
        }
        let start = ((self.written - back) % cap) as usize;
        let first = len.min(cap as usize - start);
        out.clear();
        out.extend_from_slice(&self.buf[start..start + first]);
        out.extend_from_slice(&self.buf[..len - first]);
        true
    }
}

/// `len` zero bytes, or `None` when the allocator refuses. Zeroed by the allocator, so a fresh
/// mapping's pages are only touched (and faulted in) as answers fill them.
fn zeroed(len: usize) -> Option<Vec<u8>> {
    let layout = std::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: `layout` has a non-zero size (len ≥ 1).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: allocated above by the global allocator with exactly this size and alignment 1, and
    // all of it initialised (zeroed).
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Keeps a ring's buffer for a later ring of its size, while the stock has room.
fn give_back(buf: Vec<u8>) {
    let mut spare = spare();
    if spare.iter().map(Vec::len).sum::<usize>() + buf.len() <= SPARE_BYTES_MAX {
        spare.push(buf);
    }
}

impl Drop for AnswerRing {
    fn drop(&mut self) {
        if !self.grown {
            give_back(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| n.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn reads_back_every_answer_it_still_holds_across_the_wrap() {
        let mut ring = AnswerRing::new(1000).unwrap();
        let mut at = Vec::new();
        for n in 0..40u8 {
            at.push((ring.append(&answer(n, 70)), n));
        }
        // 2,800 bytes written: the last 14 answers (980 bytes) are whole, the 15th from the end is not.
        let mut out = Vec::new();
        for &(pos, n) in &at[26..] {
            assert!(ring.read(pos as u32, 70, &mut out), "answer {n}");
            assert_eq!(out, answer(n, 70));
        }
        assert!(!ring.read(at[25].0 as u32, 70, &mut out));
        assert!(!ring.read(at[0].0 as u32, 70, &mut out));
    }

    #[test]
    fn refuses_what_was_never_written_and_answers_larger_than_the_ring() {
        let mut ring = AnswerRing::new(100).unwrap();
        let mut out = Vec::new();
        assert!(!ring.read(0, 1, &mut out)); // nothing yet
        let big = ring.append(&answer(1, 150));
        assert!(!ring.read(big as u32, 150, &mut out));
        let small = ring.append(&answer(2, 10));
        assert_eq!(small, 150);
        assert!(ring.read(small as u32, 10, &mut out));
        assert_eq!(out, answer(2, 10));
        assert!(!ring.read(small as u32, 11, &mut out)); // runs past what was written
        assert!(!ring.read((small + 10) as u32, 1, &mut out));
        assert!(ring.read(small as u32, 0, &mut out) && out.is_empty());
    }

    #[test]
    fn growing_keeps_every_answer_it_held_where_it_was_and_no_other() {
        let mut ring = AnswerRing::new(100).unwrap();
        let at: Vec<u64> = (0..5u8).map(|n| ring.append(&answer(n, 30))).collect();
        // 150 bytes written into 100: answers 2-4 are whole, answer 1 is half written over.
        assert!(ring.grow_to(1000));
        assert_eq!(ring.capacity(), 1000);
        let mut out = Vec::new();
        for (n, &pos) in at.iter().enumerate().skip(2) {
            assert!(ring.read(pos as u32, 30, &mut out), "answer {n}");
            assert_eq!(out, answer(n as u8, 30));
        }
        assert!(!ring.read(at[1] as u32, 30, &mut out));
        assert!(!ring.read(at[0] as u32, 30, &mut out));
        // New answers land after them, and the room now holds 1,000 bytes of them.
        let later: Vec<u64> = (5..40u8).map(|n| ring.append(&answer(n, 30))).collect();
        for (k, &pos) in later.iter().enumerate().skip(2) {
            assert!(ring.read(pos as u32, 30, &mut out), "answer {}", k + 5);
            assert_eq!(out, answer(k as u8 + 5, 30));
        }
        assert!(!ring.read(at[4] as u32, 30, &mut out)); // 1,050 bytes since: written over
        assert!(ring.grow_to(10) && ring.capacity() == 1000); // never shrinks
    }

    #[test]
    fn a_grown_ring_gives_back_the_buffer_it_was_made_with_and_frees_the_other() {
        // Sizes no other test uses, so that tests running beside this one do not take the buffers.
        let mut ring = AnswerRing::new(23_456).unwrap();
        let made_with = ring.buf.as_ptr();
        assert!(ring.grow_to(34_567));
        drop(ring);
        let next = AnswerRing::new(23_456).unwrap();
        assert_eq!(next.buf.as_ptr(), made_with);
        assert!(!spare().iter().any(|b| b.len() == 34_567));
    }

    #[test]
    fn positions_keep_working_past_4_gib() {
        let mut ring = AnswerRing::new(64).unwrap();
        ring.written = u64::from(u32::MAX) - 20;
        let a = ring.append(&answer(3, 30)); // straddles the 32-bit wrap of positions
        let b = ring.append(&answer(4, 30));
        let mut out = Vec::new();
        assert!(ring.read(a as u32, 30, &mut out));
        assert_eq!(out, answer(3, 30));
        assert!(ring.read(b as u32, 30, &mut out));
        assert_eq!(out, answer(4, 30));
    }

    #[test]
    fn an_ended_ring_gives_its_buffer_to_the_next_of_its_size() {
        // A size no other test uses, so that tests running beside this one do not take the buffer.
        let ring = AnswerRing::new(12_345).unwrap();
        let buffer = ring.buf.as_ptr();
        drop(ring);
        assert!(spare_bytes() >= 12_345);
        let next = AnswerRing::new(12_345).unwrap();
        assert_eq!(next.buf.as_ptr(), buffer);
        assert_eq!(next.written, 0);
    }

    #[test]
    fn memory_it_cannot_have_is_a_refusal_not_an_abort() {
        assert!(AnswerRing::new(usize::MAX / 2).is_none());
    }
}
