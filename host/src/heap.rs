//! The process's allocator, as the library sees it: its figures
//! (`hnc_heap_bytes`, which tell live data from memory the allocator keeps,
//! as the RSS cannot) and giving freed pages back after a large pass.

use std::sync::OnceLock;

/// Bytes, as the allocator counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapBytes {
    /// Held by live allocations.
    pub allocated: u64,
    /// In pages that hold live allocations (allocated plus fragmentation).
    pub active: u64,
    /// Resident: active pages, the allocator's metadata and dirty pages not
    /// yet given back.
    pub resident: u64,
    /// Mapped by the allocator, resident or not.
    pub mapped: u64,
}

/// What the binary's allocator offers the library.
#[derive(Debug, Clone, Copy)]
pub struct Allocator {
    /// Its figures now.
    pub bytes: fn() -> Option<HeapBytes>,
    /// Gives its free pages back to the OS now.
    pub release: fn(),
}

static ALLOCATOR: OnceLock<Allocator> = OnceLock::new();

/// Sets the binary's allocator; the first call wins.
pub fn install(allocator: Allocator) {
    let _ = ALLOCATOR.set(allocator);
}

/// The figures now; `None` without an allocator that reports them (the
/// library on the system's malloc).
pub fn bytes() -> Option<HeapBytes> {
    ALLOCATOR.get().and_then(|a| (a.bytes)())
}

/// Gives free heap pages back to the OS: the installed allocator's, or
/// glibc's arenas (`malloc_trim`) where the library runs on glibc's malloc.
pub fn release_free_memory() {
    if let Some(a) = ALLOCATOR.get() {
        (a.release)();
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks,
    // and unmaps pages no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
