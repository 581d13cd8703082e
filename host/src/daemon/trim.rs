//! Gives freed heap pages back to the OS once the daemon is quiet after a
//! large reconcile pass or a reload.
//!
//! A cold start or a full resync of thousands of services allocates and
//! frees tens of MB (Nomad answers, change sets, HAProxy dumps) across the
//! runtime's threads, and the passes that follow a reload free more. glibc
//! keeps the free space inside its arenas, where it counts as resident;
//! `malloc_trim` returns the free pages. The connector binary allocates
//! with jemalloc, which purges on its own; this matters where the library
//! runs on glibc's malloc (embedded, or in the tests). Elsewhere this does
//! nothing.

use std::time::Duration;
use tokio::time::Instant;

/// Services planned in one pass from which a trim is worth its cost (it
/// walks the heap: a few ms at 100 MB).
pub const LARGE_PASS: usize = 200;

/// How long the loop must be idle after such a pass before it trims (each
/// pass pushes the trim back).
pub const QUIET: Duration = Duration::from_secs(1);

/// The longest the passes that follow can push a trim back (a steady flow
/// of events must not hold it off for ever).
pub const LATEST: Duration = Duration::from_secs(5);

/// When the loop trims next.
#[derive(Debug, Default)]
pub struct Schedule {
    at: Option<Instant>,
    by: Option<Instant>,
}

impl Schedule {
    /// Notes a finished pass: a large one (or a reload) asks for a trim;
    /// any pass while one is pending pushes it back, within [`LATEST`] of
    /// the large one. The small passes after a reload (the files written
    /// when due, states compared) free memory too.
    pub fn after_pass(&mut self, large: bool, now: Instant) {
        if large {
            self.by = Some(now + LATEST);
        }
        if let Some(by) = self.by {
            self.at = Some((now + QUIET).min(by));
        }
    }

    /// When the next trim is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.at
    }

    /// Trims now and forgets the schedule.
    pub fn run(&mut self) {
        *self = Schedule::default();
        release_free_memory();
    }
}

/// Returns the free pages of every malloc arena to the OS.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks,
    // and unmaps pages no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_after_a_large_one_push_the_trim_back_within_a_bound() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.after_pass(false, t0);
        assert_eq!(s.due(), None, "small passes alone never trim");
        s.after_pass(true, t0);
        assert_eq!(s.due(), Some(t0 + QUIET));
        let later = t0 + Duration::from_millis(500);
        s.after_pass(false, later);
        assert_eq!(s.due(), Some(later + QUIET));
        let much_later = t0 + Duration::from_millis(4_500);
        s.after_pass(false, much_later);
        assert_eq!(s.due(), Some(t0 + LATEST));
    }
}
