//! Blocking queries (`blockingRPC`): return at once without `index`; otherwise wait
//! until the rows the query reads (its memdb watch set) change and the result
//! index passes `index`, or until `wait` (default and cap 300 s, plus up to
//! wait/16 jitter) runs out.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::query::{MAX_WAIT, QueryOptions};
use crate::ids::jitter;
use crate::sim::Shared;
use crate::state::State;

/// One evaluation of a query.
pub(crate) struct Answer {
    /// The result index (`X-Nomad-Index`).
    pub index: u64,
    /// The response body.
    pub body: Value,
    /// The rows read (the watch set); a change here wakes the query.
    pub watch: Value,
}

impl Answer {
    /// An answer whose watch set is its body.
    pub(crate) fn of(index: u64, body: Value) -> Self {
        Answer {
            index,
            watch: body.clone(),
            body,
        }
    }
}

/// Runs `run` as a blocking query; returns the result index and body.
pub(crate) async fn run<F>(shared: &Arc<Shared>, opts: &QueryOptions, run: F) -> (u64, Value)
where
    F: Fn(&State) -> Answer,
{
    let mut changed = shared.changed.subscribe();
    let first = run(&shared.lock());
    if opts.min_index == 0 || first.index > opts.min_index {
        return (first.index, first.body);
    }
    let wait = effective_wait(opts.wait);
    let deadline = tokio::time::Instant::now() + wait + jitter(wait / 16);
    loop {
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            _ = tokio::time::sleep_until(deadline) => break,
        }
        // The watch set fires only when the watched rows change; the index
        // returned is then the table's, which may have moved for other rows too.
        let now = run(&shared.lock());
        if now.index > opts.min_index && now.watch != first.watch {
            return (now.index, now.body);
        }
    }
    let last = run(&shared.lock());
    (last.index, last.body)
}

/// `wait` after Nomad's defaulting (0 → 300 s) and capping (> 300 s → 300 s).
fn effective_wait(requested: Duration) -> Duration {
    if requested.is_zero() || requested > MAX_WAIT {
        MAX_WAIT
    } else {
        requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_defaulted_and_capped() {
        assert_eq!(effective_wait(Duration::ZERO), MAX_WAIT);
        assert_eq!(effective_wait(Duration::from_secs(600)), MAX_WAIT);
        assert_eq!(
            effective_wait(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }
}
