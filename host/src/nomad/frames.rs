//! The event stream's NDJSON: bytes in, heartbeats, frames or Nomad's
//! trailing plain-text error out. Lines may be split across chunks; the
//! body may end mid-frame (a cut) or with text appended after the frames.

use super::error::Error;
use super::wire::{Frame, RawEvent};
use serde_json::Value;

/// A line longer than this is refused (a broken or hostile server).
const MAX_LINE: usize = 64 << 20;

/// One decoded line.
#[derive(Debug)]
pub(crate) enum Item {
    /// `{}`.
    Heartbeat,
    /// `{"Index":N,"Events":[...]}` (events whose payload could not be read
    /// keep only their topic, type and key).
    Frame(Frame),
    /// A non-JSON line: the error text Nomad appends before closing.
    ServerText(String),
}

/// Splits bytes into lines and decodes them.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    /// Whether any byte arrived.
    pub(crate) received: bool,
}

impl Decoder {
    /// Appends a chunk.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() {
            self.received = true;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line's item; `None` when no full line is buffered.
    ///
    /// # Errors
    /// A line that starts like JSON but does not decode, or is too long.
    pub(crate) fn next_item(&mut self) -> Option<Result<Item, Error>> {
        loop {
            let rest = &self.buf[self.start..];
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() > MAX_LINE {
                    return Some(Err(bad("line longer than 64 MiB")));
                }
                if self.start > 0 && self.start * 2 > self.buf.len() {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                return None;
            };
            let line_end = self.start + nl;
            let line = &self.buf[self.start..line_end];
            self.start = line_end + 1;
            if let Some(item) = decode_line(line) {
                return Some(item);
            }
        }
    }

    /// The end of the body: decodes what is left without a final newline.
    ///
    /// # Errors
    /// The body ended mid-frame.
    pub(crate) fn finish(&mut self) -> Option<Result<Item, Error>> {
        let rest = std::mem::take(&mut self.buf);
        let line = &rest[self.start.min(rest.len())..];
        self.start = 0;
        match decode_line(line)? {
            Err(_) => Some(Err(bad(&format!(
                "the stream ended mid-frame ({} bytes of an unfinished line)",
                line.len()
            )))),
            ok => Some(ok),
        }
    }
}

fn bad(reason: &str) -> Error {
    Error::BadFrame {
        reason: reason.to_string(),
    }
}

/// `None` for a blank line.
fn decode_line(line: &[u8]) -> Option<Result<Item, Error>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    if line == b"{}" {
        return Some(Ok(Item::Heartbeat));
    }
    if line[0] != b'{' {
        let text = String::from_utf8_lossy(line).into_owned();
        return Some(Ok(Item::ServerText(super::error::cut(&text, 512))));
    }
    Some(match serde_json::from_slice::<Frame>(line) {
        Ok(frame) if frame.index == 0 && frame.events.is_empty() => Ok(Item::Heartbeat),
        Ok(frame) => Ok(Item::Frame(frame)),
        Err(typed) => salvage(line, &typed),
    })
}

/// A frame some of whose events have wrong types: keep the readable events
/// (and, for `Service` events, at least the key, so deletions still apply).
fn salvage(line: &[u8], typed: &serde_json::Error) -> Result<Item, Error> {
    let value: Value = serde_json::from_slice(line).map_err(|e| bad(&e.to_string()))?;
    let index = value
        .get("Index")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(&format!("no numeric Index ({typed})")))?;
    let events = match value.get("Events") {
        Some(Value::Array(events)) => events,
        Some(Value::Null) | None => &Vec::new(),
        Some(_) => return Err(bad("Events is not an array")),
    };
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        match serde_json::from_value::<RawEvent>(e.clone()) {
            Ok(ev) => out.push(ev),
            Err(err) => {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                tracing::warn!(index, topic = %s("Topic"), key = %s("Key"), error = %err,
                    "nomad event with an unreadable payload; keeping only its key");
                out.push(RawEvent {
                    topic: s("Topic"),
                    kind: s("Type"),
                    key: s("Key"),
                    namespace: s("Namespace"),
                    index,
                    payload: super::wire::Payload::default(),
                });
            }
        }
    }
    Ok(Item::Frame(Frame { index, events: out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(chunks: &[&[u8]]) -> Vec<Result<Item, Error>> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(i) = d.next_item() {
                out.push(i);
            }
        }
        out.extend(d.finish());
        out
    }

    #[test]
    fn heartbeats_and_frames_split_anywhere() {
        let frame = br#"{"Index":7,"Events":[{"Topic":"Service","Type":"ServiceRegistration","Key":"k","Namespace":"default","Index":7,"Payload":{"Service":{"ID":"k","Port":80}}}]}"#;
        let mut wire = b"{}\n".to_vec();
        wire.extend_from_slice(frame);
        wire.extend_from_slice(b"\n\n{}\n");
        for split in 0..wire.len() {
            let got = items(&[&wire[..split], &wire[split..]]);
            assert_eq!(got.len(), 3, "split at {split}");
            assert!(matches!(got[1], Ok(Item::Frame(ref frame)) if frame.index == 7));
        }
    }

    #[test]
    fn the_docs_sample_frame_decodes() {
        let sample: Value =
            serde_json::from_str(include_str!("testdata/event-frame.json")).unwrap();
        let mut line = serde_json::to_vec(&sample).unwrap();
        line.push(b'\n');
        let got = items(&[&line]);
        assert!(matches!(&got[0], Ok(Item::Frame(frame)) if frame.events[0].topic == "Node"));
    }

    #[test]
    fn trailing_plain_text_is_the_servers_error() {
        let got = items(&[
            b"{}\n",
            b"subscription closed by server, client should resubscribe",
        ]);
        assert!(matches!(&got[1], Ok(Item::ServerText(t)) if t.starts_with("subscription closed")));
    }

    #[test]
    fn a_frame_cut_mid_way_is_an_error_not_a_panic() {
        let got = items(&[b"{}\n{\"Index\":9,\"Events\":[{\"To"]);
        assert!(matches!(got[1], Err(Error::BadFrame { .. })));
    }

    #[test]
    fn wrong_types_keep_the_key_of_service_events() {
        let line = br#"{"Index":5,"Events":[{"Topic":"Service","Type":"PlanResult","Key":"id1","Namespace":"default","Index":5,"Payload":{"Service":{"ID":"id1","Port":"eighty"}}}]}
"#;
        let got = items(&[line]);
        let Ok(Item::Frame(frame)) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(frame.events[0].key, "id1");
        assert!(frame.events[0].payload.service.is_none());
        assert!(matches!(
            items(&[b"{\"Index\":\"x\"}\n"])[0],
            Err(Error::BadFrame { .. })
        ));
    }
}
