//! Request parsing: head via `httparse`, `Content-Length` bodies, Go-like query
//! and path decoding.

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection may be reused after the response.
    pub keep_alive: bool,
}

impl Request {
    /// First value of a header (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// First value of a query parameter (Go's `query.Get`, but `None` when absent).
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First non-empty value of a query parameter.
    pub(crate) fn query_nonempty(&self, name: &str) -> Option<&str> {
        self.query(name).filter(|v| !v.is_empty())
    }

    /// All values of a query parameter.
    pub(crate) fn query_all(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The outcome of trying to parse a buffer.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A full request, and how many bytes it used.
    Complete(Box<Request>, usize),
    /// More bytes are needed.
    Partial,
    /// Unparseable; respond with this status and message, then close.
    Invalid(u16, &'static str),
}

/// Tries to parse one request from the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Parsed::Invalid(431, "Request Header Fields Too Large");
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Invalid(431, "Request Header Fields Too Large");
        }
        Err(_) => return Parsed::Invalid(400, "Bad Request"),
    };
    let method = req.method.unwrap_or("GET").to_string();
    let target = req.path.unwrap_or("/");
    let minor = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if find("transfer-encoding").is_some() {
        return Parsed::Invalid(501, "chunked request bodies are not supported");
    }
    let body_len = match find("content-length") {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= MAX_BODY => n,
            Ok(_) => return Parsed::Invalid(413, "Request Entity Too Large"),
            Err(_) => return Parsed::Invalid(400, "Bad Request"),
        },
    };
    if buf.len() < head_len + body_len {
        return Parsed::Partial;
    }
    let connection = find("connection").unwrap_or_default();
    let keep_alive = if minor == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path, false);
    let request = Request {
        method,
        path,
        query: parse_query(raw_query),
        headers,
        body: buf[head_len..head_len + body_len].to_vec(),
        keep_alive,
    };
    Parsed::Complete(Box::new(request), head_len + body_len)
}

/// Go's `url.ParseQuery`, lenient: `&`-separated, `+` is a space, bad escapes kept raw.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Percent-decodes; `plus_is_space` for query components.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_get_with_query() {
        let raw = b"GET /v1/event/stream?topic=Service%3Aweb&topic=Job&index=3&x=a+b HTTP/1.1\r\nHost: x\r\nX-Nomad-Token: t\r\n\r\n";
        let Parsed::Complete(req, n) = parse(raw) else {
            panic!("not complete")
        };
        assert_eq!(n, raw.len());
        assert_eq!(req.path, "/v1/event/stream");
        assert_eq!(req.query_all("topic"), ["Service:web", "Job"]);
        assert_eq!(req.query("index"), Some("3"));
        assert_eq!(req.query("x"), Some("a b"));
        assert_eq!(req.header("x-nomad-token"), Some("t"));
        assert!(req.keep_alive);
    }

    #[test]
    fn waits_for_body_and_rejects_garbage() {
        let raw = b"POST /sim/jobs HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
        assert!(matches!(parse(raw), Parsed::Partial));
        assert!(matches!(
            parse(b"\x00\x01 nonsense\r\n\r\n"),
            Parsed::Invalid(400, _)
        ));
        assert!(matches!(parse(b"GET / HTTP/1.0\r\n"), Parsed::Partial));
    }

    #[test]
    fn decodes_percent() {
        assert_eq!(percent_decode("a%2Fb%zz%", false), "a/b%zz%");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
