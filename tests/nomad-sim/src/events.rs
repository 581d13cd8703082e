//! Events, the bounded per-server event buffer (`event_buffer.go`) and subscription
//! filtering (`subscription.go` `filter`), with Nomad's start-index quirks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// One event as it appears on the wire.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Event {
    pub topic: String,
    /// The Raft message type of the apply that produced it (not the kind of change).
    #[serde(rename = "Type")]
    pub kind: String,
    pub key: String,
    pub namespace: String,
    pub filter_keys: Option<Vec<String>>,
    pub index: u64,
    pub payload: Value,
}

/// All events of one Raft apply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    pub index: u64,
    pub events: Vec<Event>,
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The broker was replaced (snapshot restore, restart).
    Closed,
    /// The subscriber's next batch fell out of the buffer.
    Dropped,
}

impl StreamEnd {
    /// Nomad's error text for this end.
    pub(crate) fn message(self) -> &'static str {
        match self {
            StreamEnd::Closed => "subscription closed by server, client should resubscribe",
            StreamEnd::Dropped => "event dropped from buffer",
        }
    }
}

/// The in-memory event buffer of one server.
#[derive(Debug)]
pub(crate) struct Broker {
    buffer: VecDeque<Arc<Batch>>,
    capacity: usize,
    /// Highest index ever evicted from this broker's buffer.
    evicted_through: u64,
    /// Bumped whenever the broker is replaced; open subscriptions then end.
    pub generation: u64,
}

impl Broker {
    /// An empty broker holding up to `capacity` batches (at least 1).
    pub(crate) fn new(capacity: usize, generation: u64) -> Self {
        Broker {
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            evicted_through: 0,
            generation,
        }
    }

    /// Appends a batch (empty batches are never published), evicting the oldest.
    pub(crate) fn publish(&mut self, batch: Batch) {
        if batch.events.is_empty() {
            return;
        }
        self.buffer.push_back(Arc::new(batch));
        while self.buffer.len() > self.capacity {
            if let Some(old) = self.buffer.pop_front() {
                self.evicted_through = self.evicted_through.max(old.index);
            }
        }
    }

    /// Drops everything and starts a new generation (as a snapshot restore does).
    pub(crate) fn reset(&mut self) {
        self.buffer.clear();
        self.evicted_through = 0;
        self.generation += 1;
    }

    /// The subscriber's first cursor (deliver batches with `index >= cursor`) for a
    /// requested start index, reproducing `StartAtClosest`: 0 replays the buffer, too
    /// old starts at the oldest, newer than everything still gets the newest batch.
    pub(crate) fn start_cursor(&self, requested: u64, last_index: u64) -> u64 {
        let (Some(oldest), Some(newest)) = (self.buffer.front(), self.buffer.back()) else {
            return last_index.saturating_add(1);
        };
        if requested == 0 || requested < oldest.index {
            oldest.index
        } else if requested > newest.index {
            newest.index
        } else {
            requested
        }
    }

    /// Batches with `index >= cursor`, or `Dropped` if one of them was evicted.
    pub(crate) fn read_from(&self, cursor: u64) -> Result<Vec<Arc<Batch>>, StreamEnd> {
        if cursor <= self.evicted_through {
            return Err(StreamEnd::Dropped);
        }
        Ok(self
            .buffer
            .iter()
            .filter(|b| b.index >= cursor)
            .cloned()
            .collect())
    }
}

/// A subscription request: topics with their keys, and a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub topics: BTreeMap<String, Vec<String>>,
    pub namespace: String,
}

impl Subscription {
    /// The events of a batch this subscription receives, in order; an event matching
    /// two keys is returned twice, and `*` is a wildcard only as a topic's sole key.
    pub(crate) fn filter<'a>(&self, events: &'a [Event]) -> Vec<&'a Event> {
        let all_keys: &[String] = self.topics.get("*").map_or(&[], Vec::as_slice);
        let all_all = all_keys.len() == 1 && all_keys[0] == "*";
        if self.namespace == "*" && all_all {
            return events.iter().collect();
        }
        let mut out = Vec::new();
        for event in events {
            if self.namespace != "*"
                && !event.namespace.is_empty()
                && event.namespace != self.namespace
            {
                continue;
            }
            if all_all {
                out.push(event);
                continue;
            }
            let mut keys: Vec<&String> = all_keys.iter().collect();
            if let Some(topic_keys) = self.topics.get(&event.topic) {
                keys.extend(topic_keys);
            }
            if keys.len() == 1 && keys[0] == "*" {
                out.push(event);
                continue;
            }
            for key in keys {
                if matches_key(event, key) {
                    out.push(event);
                }
            }
        }
        out
    }
}

fn matches_key(event: &Event, key: &str) -> bool {
    event.key == key
        || event
            .filter_keys
            .as_ref()
            .is_some_and(|fks| fks.iter().any(|k| k == key))
}

/// Parses the `topic` query values (`Topic:Key`, bare `Topic` = `Topic:*`,
/// none = `*:*`); the error text is Nomad's.
pub(crate) fn parse_topics(raw: &[String]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut topics: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if raw.is_empty() {
        topics.insert("*".into(), vec!["*".into()]);
        return Ok(topics);
    }
    for t in raw {
        let parts: Vec<&str> = t.split(':').collect();
        let (topic, key) = match parts.as_slice() {
            [topic] => (*topic, "*"),
            [topic, key] => (*topic, *key),
            _ => {
                return Err(format!(
                    "error parsing topics: Invalid key value pair for topic, topic: {t}"
                ));
            }
        };
        topics
            .entry(topic.to_string())
            .or_default()
            .push(key.to_string());
    }
    Ok(topics)
}

/// Serialises one frame: `{"Index":N,"Events":[...]}`.
pub(crate) fn frame_json(index: u64, events: &[&Event]) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Frame<'a> {
        index: u64,
        events: &'a [&'a Event],
    }
    serde_json::to_vec(&Frame { index, events }).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(topic: &str, key: &str, ns: &str, fks: &[&str]) -> Event {
        Event {
            topic: topic.into(),
            kind: "T".into(),
            key: key.into(),
            namespace: ns.into(),
            filter_keys: Some(fks.iter().map(|s| s.to_string()).collect()),
            index: 1,
            payload: Value::Null,
        }
    }

    fn sub(topics: &[&str], ns: &str) -> Subscription {
        let raw: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        Subscription {
            topics: parse_topics(&raw).unwrap(),
            namespace: ns.into(),
        }
    }

    #[test]
    fn wildcard_only_when_sole_key() {
        let events = [ev("Service", "id1", "default", &["job", "web"])];
        assert_eq!(sub(&["Service"], "default").filter(&events).len(), 1);
        assert_eq!(
            sub(&["Service:*", "Service:x"], "default")
                .filter(&events)
                .len(),
            0
        );
        assert_eq!(
            sub(&["Service:web", "Service:job"], "default")
                .filter(&events)
                .len(),
            2
        );
        assert_eq!(sub(&["Job"], "default").filter(&events).len(), 0);
        assert_eq!(sub(&[], "default").filter(&events).len(), 1);
        assert_eq!(sub(&["*:web"], "default").filter(&events).len(), 1);
    }

    #[test]
    fn namespace_filtering() {
        let events = [
            ev("Service", "a", "default", &[]),
            ev("Service", "b", "other", &[]),
            ev("Node", "n", "", &[]),
        ];
        assert_eq!(
            sub(&["Service", "Node"], "default").filter(&events).len(),
            2
        );
        assert_eq!(sub(&["Service", "Node"], "*").filter(&events).len(), 3);
        assert_eq!(sub(&[], "*").filter(&events).len(), 3);
    }

    #[test]
    fn topic_parse_errors() {
        let err = parse_topics(&["a:b:c".to_string()]).unwrap_err();
        assert_eq!(
            err,
            "error parsing topics: Invalid key value pair for topic, topic: a:b:c"
        );
    }

    #[test]
    fn start_cursor_quirks() {
        let mut b = Broker::new(3, 0);
        assert_eq!(b.start_cursor(50, 9), 10);
        for i in [5, 6, 7, 8] {
            b.publish(Batch {
                index: i,
                events: vec![ev("Job", "j", "default", &[])],
            });
        }
        assert_eq!(b.start_cursor(0, 8), 6);
        assert_eq!(b.start_cursor(2, 8), 6);
        assert_eq!(b.start_cursor(7, 8), 7);
        assert_eq!(b.start_cursor(100, 8), 8);
        assert_eq!(b.read_from(5), Err(StreamEnd::Dropped));
        assert_eq!(b.read_from(7).unwrap().len(), 2);
    }
}
