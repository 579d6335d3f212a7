//! How the process's allocator hands back large buffers (docs/engine.md, "Allocation").

/// Allocations at least this large are mapped on their own and unmapped when freed (glibc's own
/// starting value, pinned).
pub const MMAP_THRESHOLD_BYTES: usize = 128 * 1024;

/// Pins glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`]; the pool does it when it starts.
///
/// Left alone, glibc raises the threshold to the size of each mapped block that is freed, up to
/// 32 MiB. A session's buffers grow on its worker at its first long message, and after the first such
/// session ended, the next ones' grown buffers came from the workers' heaps, which keep freed pages:
/// after a minute of hostile clients sending 1 MiB messages, an idle server held 1.45 GB instead of
/// 0.46 GB. Frame-sized work allocates far below the threshold, so the frame path is unchanged.
pub fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes a setting of glibc's allocator; it is thread-safe.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) };
        });
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Bytes in blocks glibc mapped on their own, live now.
    fn mapped_bytes() -> usize {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        unsafe { libc::mallinfo2() }.hblkhd
    }

    #[test]
    fn a_large_buffer_is_mapped_even_after_a_larger_one_was_freed() {
        pin_mmap_threshold();
        // Without the pin, freeing this raises glibc's threshold to 4 MiB…
        let big = vec![1u8; 4 << 20];
        std::hint::black_box(&big);
        drop(big);
        // …and this would come from a heap that keeps its pages once it is freed.
        let before = mapped_bytes();
        let next = vec![1u8; 1 << 20];
        std::hint::black_box(&next);
        assert!(mapped_bytes() >= before + (1 << 20), "a 1 MiB buffer was not mapped on its own");
    }
}
