//! The event stream's NDJSON: bytes in, heartbeats, frames or Nomad's
//! trailing plain-text error out. Lines may be split across chunks; the
//! body may end mid-frame (a cut) or with text appended after the frames.
//!
//! Decoding is linear in the bytes received: each byte is searched for a
//! line end once, however many chunks a frame spans (a 24 MB job
//! registration arrives in thousands of chunks).

use super::wire::{Frame, RawEvent};
use crate::nomad::error::Error;
use serde_json::Value;

/// The default cap on one frame (`[nomad] max_frame_bytes`): far above the
/// largest job Nomad accepts in practice, low enough that a broken or hostile
/// server cannot make the connector buffer without end.
pub(crate) const DEFAULT_MAX_FRAME: usize = 64 << 20;

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
#[derive(Debug)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    /// Bytes of `buf` already searched for a line end (from `start`): the
    /// search of the next chunk starts here, which keeps decoding linear.
    scanned: usize,
    /// The longest line accepted.
    max_line: usize,
    /// Whether any byte arrived.
    pub(crate) received: bool,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder {
    /// A decoder that refuses lines longer than `max_line` bytes.
    pub(crate) fn new(max_line: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
            received: false,
        }
    }

    /// Appends a chunk.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() {
            self.received = true;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line's item; `None` when no full line is buffered.
    ///
    /// # Errors
    /// A line that starts like JSON but does not decode, or
    /// [`Error::FrameTooLarge`] once the unfinished line passes the cap
    /// (the stream must then be dropped: the rest of the line is not read).
    pub(crate) fn next_item(&mut self) -> Option<Result<Item, Error>> {
        loop {
            let from = self.scanned.max(self.start);
            let Some(nl) = self.buf[from..].iter().position(|b| *b == b'\n') else {
                self.scanned = self.buf.len();
                let unfinished = self.buf.len() - self.start;
                if unfinished > self.max_line {
                    return Some(Err(Error::FrameTooLarge {
                        received: unfinished,
                        max: self.max_line,
                        index: leading_index(&self.buf[self.start..]),
                    }));
                }
                if self.start > 0 && self.start * 2 > self.buf.len() {
                    self.buf.drain(..self.start);
                    self.scanned -= self.start;
                    self.start = 0;
                }
                return None;
            };
            let line_end = from + nl;
            let line = &self.buf[self.start..line_end];
            self.start = line_end + 1;
            self.scanned = self.start;
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
        self.scanned = 0;
        match decode_line(line)? {
            Err(_) => Some(Err(bad(&format!(
                "the stream ended mid-frame ({} bytes of an unfinished line)",
                line.len()
            )))),
            ok => Some(ok),
        }
    }
}

/// The `Index` a frame starts with (`{"Index":N,...`, as Nomad writes them).
fn leading_index(line: &[u8]) -> Option<u64> {
    let head = line.get(..64.min(line.len()))?;
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.trim_start().strip_prefix("{\"Index\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
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
        let text = crate::nomad::error::cut(&text, 512);
        return Some(Ok(Item::ServerText(
            crate::escape::one_line(&text).into_owned(),
        )));
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
    fn a_frame_in_one_byte_chunks_decodes_once() {
        let frame = br#"{"Index":8,"Events":[{"Topic":"Job","Type":"JobRegistered","Key":"j","Namespace":"default","Index":8,"Payload":{}}]}"#;
        let mut wire = frame.to_vec();
        wire.extend_from_slice(b"\n{}\n");
        let chunks: Vec<&[u8]> = wire.chunks(1).collect();
        let got = items(&chunks);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(got[0], Ok(Item::Frame(ref frame)) if frame.index == 8));
        assert!(matches!(got[1], Ok(Item::Heartbeat)));
    }

    #[test]
    fn a_frame_over_the_cap_is_refused_naming_its_size() {
        let mut d = Decoder::new(1000);
        d.push(b"{}\n");
        assert!(matches!(d.next_item(), Some(Ok(Item::Heartbeat))));
        d.push(&[b'{'; 600]);
        assert!(d.next_item().is_none(), "600 bytes are under the cap");
        d.push(&[b' '; 600]);
        let err = match d.next_item() {
            Some(Err(e)) => e,
            other => panic!("expected FrameTooLarge, got {other:?}"),
        };
        assert!(matches!(
            err,
            Error::FrameTooLarge {
                received: 1200,
                max: 1000,
                index: None
            }
        ));
        let mut d = Decoder::new(100);
        d.push(format!("{{\"Index\":42,\"Events\":[{}", " ".repeat(100)).as_bytes());
        assert!(matches!(
            d.next_item(),
            Some(Err(Error::FrameTooLarge {
                index: Some(42),
                ..
            }))
        ));
        let text = err.to_string();
        assert!(
            text.contains("1200") && text.contains("max_frame_bytes"),
            "{text}"
        );
    }

    #[test]
    fn a_line_at_the_cap_still_decodes() {
        let mut d = Decoder::new(64);
        let line = format!("{{\"Index\":3,\"Events\":[]{}}}\n", " ".repeat(41));
        assert_eq!(line.len(), 65);
        d.push(line.as_bytes());
        assert!(matches!(d.next_item(), Some(Ok(Item::Frame(ref f))) if f.index == 3));
    }

    #[test]
    fn the_docs_sample_frame_decodes() {
        let sample: Value =
            serde_json::from_str(include_str!("../testdata/event-frame.json")).unwrap();
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
