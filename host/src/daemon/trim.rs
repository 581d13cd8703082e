//! Gives freed heap pages back to the OS once the daemon is quiet after a
//! large reconcile pass or a reload.
//!
//! A cold start or a full resync of thousands of services allocates and
//! frees tens of MB (Nomad answers, change sets, HAProxy dumps) across the
//! runtime's threads, and the passes that follow a reload free more. glibc
//! keeps the free space inside its arenas, where it counts as resident;
//! `malloc_trim` returns the free pages. Elsewhere this does nothing.

use std::time::Duration;

/// Services planned in one pass from which a trim is worth its cost (it
/// walks the heap: a few ms at 100 MB).
pub const LARGE_PASS: usize = 200;

/// How long the loop must be idle after such a pass before it trims (each
/// new large pass pushes the trim back).
pub const QUIET: Duration = Duration::from_secs(1);

/// Returns the free pages of every malloc arena to the OS.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks,
    // and unmaps pages no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
