//! `Requeue`: a request to look again after some time, merged by keeping the earliest.
//!
//! The planner (a job spec that could not be read), the diff (a drain's
//! grace period) and the driver (a deferred reload, a failed change) each
//! ask to run again; whoever collects several requests keeps the earliest
//! through [`Earliest`], the one place that rule is written. The daemon
//! turns them into due times (`daemon::reconcile`'s schedule).

use std::time::Duration;

/// Run again after this long; `None`: only when something changes.
///
/// An alias, not a newtype, so that the fields that carry it
/// (`ChangeSet::requeue_after`, `ApplyReport::requeue_after`,
/// `ServicePlan::retry_after`) read as plain options to their users.
pub type Requeue = Option<Duration>;

/// Merging requests: the earliest wins.
pub trait Earliest {
    /// Asks to run again after `after` at the latest.
    fn earliest(&mut self, after: Duration);

    /// Merges another request into this one.
    fn merge(&mut self, other: Requeue);
}

impl Earliest for Requeue {
    fn earliest(&mut self, after: Duration) {
        *self = Some(self.map_or(after, |d| d.min(after)));
    }

    fn merge(&mut self, other: Requeue) {
        if let Some(after) = other {
            self.earliest(after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_earliest_request_wins_in_any_order() {
        let mut r: Requeue = None;
        r.earliest(30 * S);
        r.earliest(10 * S);
        r.earliest(20 * S);
        assert_eq!(r, Some(10 * S));
        let mut other: Requeue = Some(5 * S);
        other.merge(None);
        assert_eq!(other, Some(5 * S), "no request changes nothing");
        r.merge(other);
        assert_eq!(r, Some(5 * S));
    }
}
