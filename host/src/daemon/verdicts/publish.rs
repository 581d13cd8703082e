//! When the loop hands the monitor a new list of servers to compare: at
//! most once per monitor poll, since the list is built from every instance
//! (at 10,000 instances that took most of each pass's time when every pass
//! built it), and the monitor reads it only when it polls anyway.

use std::time::Duration;
use tokio::time::Instant;

/// When the next list is due.
#[derive(Debug)]
pub struct Publish {
    every: Duration,
    due: Option<Instant>,
    last: Option<Instant>,
}

impl Publish {
    /// At most one list per `every` (the monitor's poll).
    pub fn new(every: Duration) -> Publish {
        Publish {
            every,
            due: None,
            last: None,
        }
    }

    /// A pass changed the plans: a list is due, at once unless one went out
    /// less than `every` ago.
    pub fn changed(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(self.last.map_or(now, |last| (last + self.every).max(now)));
        }
    }

    /// When the next list is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Whether a list is due by `now`; if so it counts as sent.
    pub fn take(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                self.last = Some(now);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_list_goes_at_once_and_the_next_after_a_poll() {
        let every = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut p = Publish::new(every);
        assert!(!p.take(t0), "nothing changed yet");
        p.changed(t0);
        assert!(p.take(t0));
        let soon = t0 + Duration::from_secs(1);
        p.changed(soon);
        p.changed(soon + Duration::from_secs(1));
        assert_eq!(p.due(), Some(t0 + every), "one list for both changes");
        assert!(!p.take(soon));
        assert!(p.take(t0 + every));
        assert_eq!(p.due(), None);
        let late = t0 + Duration::from_secs(60);
        p.changed(late);
        assert!(p.take(late), "a quiet daemon sends at once");
    }
}
