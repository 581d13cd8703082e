//! The binary's global allocator: jemalloc on Linux.
//!
//! Under steady churn (events, job versions, HAProxy dumps, handled on the
//! runtime's worker and blocking threads) glibc's per-thread arenas kept
//! growing while the live heap stayed flat: freed memory stayed resident.
//! jemalloc gives dirty pages back on a decay timer, and its background
//! thread does so while the daemon is idle, too.

use haproxy_nomad_connector::heap::{Allocator, HeapBytes};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A C string that jemalloc reads at start-up.
#[repr(transparent)]
pub struct Options(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string.
unsafe impl Sync for Options {}

/// jemalloc's start-up options (`_RJEM_MALLOC_CONF` in the environment
/// overrides them): purge from a background thread, so that an idle daemon
/// shrinks too.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: Options = Options(c"background_thread:true".as_ptr());

/// jemalloc, as the library sees it: its figures and its purge.
pub const JEMALLOC: Allocator = Allocator {
    bytes: heap_bytes,
    release: purge,
};

/// jemalloc's figures for `hnc_heap_bytes`.
fn heap_bytes() -> Option<HeapBytes> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // The statistics are a snapshot taken when the epoch advances.
    epoch::advance().ok()?;
    let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Some(HeapBytes {
        allocated: bytes(stats::allocated::read().ok()?),
        active: bytes(stats::active::read().ok()?),
        resident: bytes(stats::resident::read().ok()?),
        mapped: bytes(stats::mapped::read().ok()?),
    })
}

/// Gives every arena's dirty pages back to the OS now, instead of on the
/// decay timer.
fn purge() {
    // 4096 is MALLCTL_ARENAS_ALL: every arena.
    // SAFETY: a void mallctl (no old or new value) on a NUL-terminated name.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}
