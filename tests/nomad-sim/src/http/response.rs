//! Responses: Go-like headers (`Date`, `Content-Length`, `Vary`), plain-text errors,
//! JSON bodies (optionally pretty), and gorilla-style gzip/deflate compression.

use std::io::Write;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};
use serde_json::Value;

use crate::timefmt::http_date_now;

/// `Content-Type` of Nomad's plain-text errors (Go sniffs it from the body).
pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Content codings Nomad's HTTP server applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    Deflate,
}

/// gorilla `CompressHandler`: the first of `gzip`/`deflate` listed verbatim in
/// `Accept-Encoding` (q-values are not understood, so `gzip;q=1` does not count).
pub(crate) fn negotiate(accept_encoding: Option<&str>) -> Option<Encoding> {
    accept_encoding?
        .split(',')
        .map(str::trim)
        .find_map(|e| match e {
            "gzip" => Some(Encoding::Gzip),
            "deflate" => Some(Encoding::Deflate),
            _ => None,
        })
}

/// Compresses a whole body.
pub(crate) fn compress(enc: Encoding, body: &[u8]) -> Vec<u8> {
    let result = match enc {
        Encoding::Gzip => {
            let mut e = GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(body).and_then(|()| e.finish())
        }
        Encoding::Deflate => {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(body).and_then(|()| e.finish())
        }
    };
    result.unwrap_or_default()
}

/// A response with a known length.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An empty body (Go sets no `Content-Type`).
    pub(crate) fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A plain-text body, as Nomad's `wrap` writes errors.
    pub(crate) fn text(status: u16, msg: &str) -> Self {
        Response::empty(status)
            .header("Content-Type", TEXT_PLAIN)
            .with_body(msg.as_bytes().to_vec())
    }

    /// A JSON body; `pretty` indents with 4 spaces and adds a newline (`?pretty`).
    pub(crate) fn json(value: &Value, pretty: bool) -> Self {
        let body = if pretty {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            match serde::Serialize::serialize(value, &mut ser) {
                Ok(()) => {
                    buf.push(b'\n');
                    buf
                }
                Err(_) => serde_json::to_vec(value).unwrap_or_default(),
            }
        } else {
            serde_json::to_vec(value).unwrap_or_default()
        };
        Response::empty(200)
            .header("Content-Type", "application/json")
            .with_body(body)
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replaces the body.
    pub(crate) fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Serialises the response; `encoding` compresses the body (and adds
    /// `Content-Encoding`); `Vary: Accept-Encoding` is always sent, as gorilla does.
    pub(crate) fn to_bytes(&self, encoding: Option<Encoding>, keep_alive: bool) -> Vec<u8> {
        let body = match encoding {
            Some(enc) => compress(enc, &self.body),
            None => self.body.clone(),
        };
        let mut head = status_line(self.status);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(enc) = encoding {
            let name = match enc {
                Encoding::Gzip => "gzip",
                Encoding::Deflate => "deflate",
            };
            head.push_str(&format!("Content-Encoding: {name}\r\n"));
        }
        head.push_str("Vary: Accept-Encoding\r\n");
        head.push_str(&format!("Date: {}\r\n", http_date_now()));
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

/// `HTTP/1.1 <code> <reason>\r\n`.
pub(crate) fn status_line(status: u16) -> String {
    format!("HTTP/1.1 {status} {}\r\n", reason(status))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_is_gorilla_like() {
        assert_eq!(negotiate(Some("gzip, deflate")), Some(Encoding::Gzip));
        assert_eq!(negotiate(Some("br, deflate")), Some(Encoding::Deflate));
        assert_eq!(negotiate(Some("gzip;q=1.0")), None);
        assert_eq!(negotiate(None), None);
    }

    #[test]
    fn serialises_with_length() {
        let bytes = Response::text(404, "job not found").to_bytes(None, true);
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(s.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(s.contains("Content-Length: 13\r\n"));
        assert!(s.ends_with("\r\n\r\njob not found"));
    }
}
