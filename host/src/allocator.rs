//! The binary's global allocator: jemalloc on Linux.
//!
//! Under steady churn (events, job versions, HAProxy dumps, handled on the
//! runtime's worker and blocking threads) glibc's per-thread arenas kept
//! growing while the live heap stayed flat: freed memory stayed resident.
//! jemalloc gives dirty pages back on a decay timer, and its background
//! thread does so while the daemon is idle, too.

#[cfg(all(target_os = "linux", not(target_env = "musl")))]
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
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: Options = Options(c"background_thread:true".as_ptr());
