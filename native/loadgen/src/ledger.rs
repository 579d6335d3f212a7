//! The frames one session has sent and not yet seen resolved.
//!
//! docs/protocol.md: the server answers the n-th frame with the n-th binary message, in order, unless it
//! reports the frame in `dropped` (docs/protocol.md §6 and queue bound) or answers it with an `error` naming the frame. So the
//! oldest unresolved frame is the one a binary answer belongs to:
//!
//! ```text
//!   front                                   back
//!   [ 7 ][ 8 dropped ][ 9 ][ 10 error ][ 11 ]      ← sent, in frame order
//!     ▲ next binary answer resolves 7; the one after skips 8 and resolves 9
//! ```

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy)]
struct Entry {
    frame: u64,
    sent_ns: u64,
    resolved: bool,
}

/// Outstanding frames of one session, oldest first.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: VecDeque<Entry>,
    next_frame: u64,
    open: usize,
}

impl Ledger {
    /// Records a frame sent at `sent_ns`; returns its index.
    pub fn sent(&mut self, sent_ns: u64) -> u64 {
        let frame = self.next_frame;
        self.next_frame += 1;
        self.entries.push_back(Entry {
            frame,
            sent_ns,
            resolved: false,
        });
        self.open += 1;
        frame
    }

    /// A binary answer arrived: the oldest unresolved frame and when it was sent, or `None` when
    /// nothing was outstanding (an answer the client did not ask for).
    pub fn answer(&mut self) -> Option<(u64, u64)> {
        self.skip_resolved();
        let e = self.entries.pop_front()?;
        self.open -= 1;
        Some((e.frame, e.sent_ns))
    }

    /// The server reported `frame` dropped or in error: it gets no binary answer. Returns whether it
    /// was outstanding (a second report, or one for a frame never sent, returns false).
    pub fn resolve(&mut self, frame: u64) -> bool {
        let Some(first) = self.entries.front().map(|e| e.frame) else {
            return false;
        };
        let Some(at) = frame.checked_sub(first) else {
            return false;
        };
        match self.entries.get_mut(at as usize) {
            Some(e) if !e.resolved => {
                e.resolved = true;
                self.open -= 1;
                self.skip_resolved();
                true
            }
            _ => false,
        }
    }

    /// Frames sent and neither answered nor reported.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Frames sent so far.
    pub fn sent_count(&self) -> u64 {
        self.next_frame
    }

    fn skip_resolved(&mut self) {
        while self.entries.front().is_some_and(|e| e.resolved) {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_skip_frames_reported_dropped_or_in_error() {
        let mut l = Ledger::default();
        for t in 0..5 {
            l.sent(t * 10);
        }
        assert!(l.resolve(1));
        assert!(!l.resolve(1), "reported twice");
        assert!(l.resolve(3));
        assert_eq!(l.open(), 3);
        assert_eq!(l.answer(), Some((0, 0)));
        assert_eq!(l.answer(), Some((2, 20)));
        assert_eq!(l.answer(), Some((4, 40)));
        assert_eq!(l.answer(), None);
        assert!(!l.resolve(9), "never sent");
        assert_eq!((l.open(), l.sent_count()), (0, 5));
    }
}
