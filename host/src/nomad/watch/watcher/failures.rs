//! A failed request or stream: resumed at once, re-listed, or retried after a back-off.

use super::{RELIST_WITHIN, STABLE_AFTER, ScopeLoop, State, Step, Streaming};
use crate::nomad::error::Error;
use crate::nomad::watch::backoff::{Action, error_policy};
use crate::nomad::watch::client::Api;
use crate::nomad::watch::instance::Change;
use tokio::time::Instant;

impl<C: Api> ScopeLoop<C> {
    pub(super) fn failed(
        &mut self,
        error: Error,
        stream: Option<&Streaming<C::Stream>>,
        changes: Vec<Change>,
    ) -> Step<C::Stream> {
        if stream
            .is_some_and(|s| s.frames > 0 || (s.connected && s.opened.elapsed() >= STABLE_AFTER))
        {
            self.stream_backoff.reset();
        }
        let message = with_causes(&error);
        // A stream that delivered events and then ended (the reader fell
        // behind Nomad's buffer, the server was restored) is resumed at
        // once: the events after the gap keep coming, and a re-list soon
        // repairs the gap. A resumed stream that ends before any event
        // (resumed too far behind) re-lists at once. Otherwise a stream
        // that ends before any event backs off as any failure (a refused
        // token can end streams at once, 1.11.2+).
        let ended = matches!(error, Error::StreamEnded { .. });
        let frames = stream.map_or(0, |s| s.frames);
        if ended && frames == 0 && self.relist_due.is_some() {
            return self.owed_relist(changes);
        }
        if ended && frames > 0 {
            tracing::warn!(scope = %self.scope, error = %message, frames,
                "nomad event stream ended; resuming it at once, re-listing once it is quiet");
            self.relist_due
                .get_or_insert_with(|| Instant::now() + RELIST_WITHIN);
            self.board.update(self.key(), |h| h.connected = false);
            return Step {
                next: State::Subscribe {
                    from: self.next_index(),
                },
                changes,
                action: Action::Continue,
            };
        }
        let backoff = match stream {
            Some(_) => &mut self.stream_backoff,
            None => &mut self.request_backoff,
        };
        let action = error_policy(&error, backoff);
        let failures = backoff.failures();
        if self.failure_log.should_log(&message, Instant::now()) {
            tracing::warn!(scope = %self.scope, error = %message, failures,
                "nomad watch failed; re-listing after a back-off");
        } else {
            tracing::debug!(scope = %self.scope, error = %message, failures, "nomad watch failed again");
        }
        self.board.update(self.key(), |h| {
            h.connected = false;
            h.last_error = Some(message);
        });
        Step {
            next: State::Relist,
            changes,
            action,
        }
    }
}

/// The error and its causes on one line (`… request failed: error sending
/// request …: tcp connect error: Connection refused`), for the log and
/// `/readyz`; a cause the text already holds is not repeated.
pub(super) fn with_causes(error: &Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
