//! Reading a scope's event stream: opening it, one chunk at a time, each frame or heartbeat.

use super::{QUIET_BEFORE_RELIST, ScopeLoop, State, Step, Streaming};
use crate::nomad::error::{Error, Result};
use crate::nomad::watch::backoff::Action;
use crate::nomad::watch::client::{Api, ChunkStream};
use crate::nomad::watch::events::TOPICS;
use crate::nomad::watch::frames::{Decoder, Item};
use crate::nomad::watch::instance::Change;
use crate::nomad::watch::wire::RawEvent;
use tokio::time::Instant;

impl<C: Api> ScopeLoop<C> {
    /// Opens the event stream at `from` and counts it.
    pub(super) async fn open(&mut self, from: u64) -> Result<C::Stream> {
        let body = self
            .client
            .event_stream(self.scope.param(), &TOPICS, from)
            .await?;
        self.streams_opened += 1;
        if self.streams_opened > 1 {
            self.board.update(self.key(), |h| h.reconnects += 1);
        }
        Ok(body)
    }

    pub(super) fn streaming(&self, body: C::Stream, from: u64) -> State<C::Stream> {
        State::Streaming(Box::new(Streaming {
            body,
            decoder: Decoder::new(self.max_frame),
            requested: from,
            opened: Instant::now(),
            connected: false,
            frames: 0,
        }))
    }

    pub(super) async fn read(&mut self, mut s: Box<Streaming<C::Stream>>) -> Step<C::Stream> {
        let mut changes = Vec::new();
        let wait = match self.relist_due {
            Some(due) => self
                .idle_timeout
                .min(QUIET_BEFORE_RELIST)
                .min(due.saturating_duration_since(Instant::now())),
            None => self.idle_timeout,
        };
        let chunk = match tokio::time::timeout(wait, s.body.chunk()).await {
            // Quiet (or due): repair what the resumed stream missed.
            Err(_) if self.relist_due.is_some() => return self.owed_relist(changes),
            Err(_) => return self.failed(Error::IdleTimeout(self.idle_timeout), Some(&s), changes),
            Ok(Err(e)) => return self.failed(e, Some(&s), changes),
            Ok(Ok(chunk)) => chunk,
        };
        let Some(chunk) = chunk else {
            let end = match s.decoder.finish() {
                Some(Ok(item)) => self.on_item(item, &mut s, &mut changes).err(),
                Some(Err(e)) => Some(e),
                None => None,
            };
            let end = end.unwrap_or(if s.decoder.received {
                Error::StreamEnded { message: None }
            } else {
                Error::StreamRefused
            });
            return self.failed(end, Some(&s), changes);
        };
        s.decoder.push(&chunk);
        while let Some(item) = s.decoder.next_item() {
            if let Err(e) = item.and_then(|item| self.on_item(item, &mut s, &mut changes)) {
                // An oversized frame would come back on every new stream:
                // stream from after it; the re-list covers its services.
                // Its Job and Allocation events are lost with it, so the job
                // specs they would have invalidated are read again.
                if let Error::FrameTooLarge { index, .. } = &e {
                    if let Some(i) = *index {
                        self.last_index = self.last_index.max(Some(i));
                    }
                    if let Some(inv) = &self.invalidate {
                        inv.server_reset();
                    }
                }
                return self.failed(e, Some(&s), changes);
            }
        }
        if self.relist_due.is_some_and(|due| due <= Instant::now()) {
            return self.owed_relist(changes);
        }
        Step {
            next: State::Streaming(s),
            changes,
            action: Action::Continue,
        }
    }

    /// The index to stream from: the one after the last seen (inclusive start).
    pub(super) fn next_index(&self) -> u64 {
        self.last_index.map_or(0, |last| last + 1)
    }

    /// Drops the resumed stream for a full re-list (which opens a new one).
    pub(super) fn owed_relist(&mut self, changes: Vec<Change>) -> Step<C::Stream> {
        tracing::debug!(scope = %self.scope, "re-listing what the resumed stream may have missed");
        Step {
            next: State::Relist,
            changes,
            action: Action::Continue,
        }
    }

    fn on_item(
        &mut self,
        item: Item,
        s: &mut Streaming<C::Stream>,
        changes: &mut Vec<Change>,
    ) -> Result<()> {
        let first = !s.connected;
        s.connected = true;
        // Frames and heartbeats feed the stream lag and the events by topic.
        let received: Option<&[RawEvent]> = match &item {
            Item::Frame(frame) => Some(&frame.events),
            Item::Heartbeat => Some(&[]),
            Item::ServerText(_) => None,
        };
        if first || received.is_some() {
            let now = Instant::now();
            self.board.update(self.key(), |h| {
                h.connected = true;
                if let Some(events) = received {
                    h.received(now, events.iter().map(|e| e.topic.as_str()));
                }
            });
        }
        match item {
            Item::Heartbeat => Ok(()),
            Item::Frame(frame) => {
                if frame.index >= s.requested {
                    s.frames += 1;
                }
                self.apply_frame(frame, s.requested, changes);
                Ok(())
            }
            Item::ServerText(text) if text.contains("Permission denied") => {
                Err(Error::PermissionDenied {
                    what: "GET /v1/event/stream".into(),
                    status: 200,
                    body: text,
                })
            }
            Item::ServerText(text) => Err(Error::StreamEnded {
                message: Some(text),
            }),
        }
    }
}
