//! An allocator that aborts on any single allocation above a cap.
//!
//! The harness must never allocate what a peer *claims* (a frame length, a Content-Length). A
//! fuzz input is a few KiB, so any allocation far above that was sized by a claim: installed as
//! the global allocator of a fuzz target or a property test, this turns such a bug into an
//! immediate, reported crash instead of a slow out-of-memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// Largest single allocation the fuzz targets and property tests allow (16 MiB).
///
/// Far above every legitimate buffer (the client's 1 MiB read cap, the server's 64 KiB limit in
/// the fuzzed configurations) and far below a claimed 100 MiB or 2^63-byte frame.
pub const DEFAULT_CAP: usize = 16 * 1024 * 1024;

/// The system allocator with a per-allocation size cap.
pub struct CappedAlloc {
    cap: usize,
}

impl CappedAlloc {
    /// An allocator refusing (by aborting) any allocation larger than `cap` bytes.
    pub const fn new(cap: usize) -> Self {
        Self { cap }
    }

    fn check(&self, size: usize) {
        if size > self.cap {
            // No allocation here: stderr is unbuffered and the message is static.
            let _ = std::io::stderr().write_all(
                b"wsaudit: allocation above the fuzzing cap (a claimed size was trusted)\n",
            );
            std::process::abort();
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// addition is a size check that aborts before any memory is touched.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.check(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.check(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.check(new_size);
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s size contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
