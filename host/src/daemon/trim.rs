//! Gives freed heap pages back to the OS once the daemon is quiet after a
//! large reconcile pass or a reload.
//!
//! A cold start or a full resync of thousands of services allocates and
//! frees tens of MB (Nomad answers, change sets, HAProxy dumps) across the
//! runtime's threads, and the passes that follow a reload free more. The
//! allocator keeps the free space, where it counts as resident: jemalloc
//! (the binary's) gives it back on a decay timer of about 10 s, glibc's
//! arenas (the library elsewhere, the tests) not at all. The trim gives it
//! back at once ([`crate::heap::release_free_memory`]).

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
        crate::heap::release_free_memory();
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
